# De beheeromgeving in het Nederlands: dezelfde berichten als en.ftl.

app-name = Nudge
skip-to-content = Naar de inhoud
nav-label = Hoofdmenu
nav-dashboard = Overzicht
nav-contacts = Contacten

role-owner = eigenaar
role-admin = beheerder
role-editor = redacteur
role-viewer = lezer

language-label = Taal
language-en = English
language-nl = Nederlands
language-de = Deutsch
language-save = Wisselen
sign-out = Afmelden

## Aanmelden

sign-in-title = Aanmelden
sign-in-button = Aanmelden
sign-in-error-invalid = Het e-mailadres of het wachtwoord klopt niet.
sign-in-error-locked = Te vaak mislukt. Probeer het over { $minutes ->
    [one] een minuut
   *[other] { $minutes } minuten
} opnieuw.

## Foutpagina's

error-back = Terug naar het overzicht
error-not-found-title = Niet gevonden
error-not-found = Deze pagina of dit gegeven bestaat niet (meer).
error-forbidden-title = Niet toegestaan
error-forbidden = Uw rol staat dit niet toe. Vraag het een eigenaar of beheerder.
error-csrf-title = Formulier verlopen
error-csrf = Dit formulier kwam niet van een actuele pagina van Nudge; er is niets gewijzigd. Laad de pagina opnieuw en probeer het nog eens.
error-bad-request-title = Verzoek onleesbaar
error-bad-request = De link of het formulier bevat waarden die Nudge niet kan lezen.
error-too-large-title = Te groot
error-too-large = Wat is verstuurd, is groter dan Nudge aanneemt.
error-internal-title = Er ging iets mis
error-internal = Er ging bij ons iets mis; het is vastgelegd. Probeer het opnieuw.

## Velden en kolommen

field-email = E-mailadres
field-password = Wachtwoord
field-first-name = Voornaam
field-last-name = Achternaam
field-phone = Telefoon
field-language = Taal
field-time-zone = Tijdzone
field-source = Bron
column-name = Naam
column-status = Status
column-contacts = Contacten
column-share = Aandeel
column-created = Aangemaakt
column-updated = Gewijzigd
column-sequence = Reeks
column-last-message = Laatste bericht
column-next-message = Volgend bericht
column-subject = Onderwerp
column-class = Soort
form-has-errors = Verbeter de gemarkeerde velden.
yes = ja
no = nee
percent = { $value }%

## Statussen

status-subscribed = Ingeschreven
status-pending = In afwachting
status-unsubscribed = Afgemeld
status-transactional = Alleen transactioneel
status-bounced = Onbestelbaar
status-complained = Klacht

## Overzicht

dashboard-title = Overzicht
dashboard-contacts-by-status = Contacten per status
dashboard-status-chart-title = Aandeel van de contacten per status
contacts-count = { $count ->
    [one] { $count } contact
   *[other] { $count } contacten
}

## Contacten

contacts-title = Contacten
contacts-found = { $count ->
    [0] Geen contacten gevonden.
    [one] Eén contact gevonden.
   *[other] { $count } contacten gevonden.
}
contacts-none = Geen contacten om te tonen.
filter-search = Zoeken (begin van e-mail of naam)
filter-any = Alle
filter-group = Groep
filter-tag = Label
filter-apply = Filteren
filter-clear = Filters wissen
pager-label = Pagina's
pager-first = Eerste pagina
pager-next = Volgende pagina
contact-new-title = Nieuw contact
contact-create = Contact aanmaken

## Eén contact

contact-details = Gegevens
contact-groups = Groepen
contact-no-groups = In geen enkele groep.
contact-tags = Labels
contact-no-tags = Geen labels.
contact-enrolments = Reeksen
contact-no-enrolments = In geen enkele reeks.
contact-messages = Berichten
contact-no-messages = Nog geen berichten.
contact-timeline = Tijdlijn
timeline-older = Oudere regels
status-new = Nieuwe status
status-reason = Reden
status-reason-required = Voor het verlaten van deze status is een reden nodig, bijvoorbeeld hoe het contact vroeg om terug te komen.
status-reason-optional = Een reden is niet verplicht; hij komt in de tijdlijn.
status-change = Status wijzigen

enrolment-active = actief
enrolment-suspended = opgeschort
enrolment-paused = gepauzeerd
enrolment-completed = afgerond
enrolment-cancelled = geannuleerd

message-class-campaign = campagne
message-class-automation = automatisering
message-class-transactional = transactioneel
message-status-queued = in de wachtrij
message-status-sending = wordt verzonden
message-status-sent = verzonden
message-status-retrying = nieuwe poging
message-status-failed = mislukt
message-status-skipped = overgeslagen

timeline-contact-created = Aangemaakt
timeline-suppression-matched = Eerder gewist
timeline-field-changed = Veld gewijzigd
timeline-group-joined = Groep toegevoegd
timeline-group-left = Groep verlaten
timeline-tag-added = Label toegevoegd
timeline-tag-removed = Label verwijderd
timeline-status-changed = Status gewijzigd
timeline-imported = Geïmporteerd
timeline-note = Notitie
timeline-email-queued = E-mail in de wachtrij
timeline-email-sent = E-mail verzonden
timeline-email-skipped = E-mail overgeslagen
timeline-email-deferred = E-mail uitgesteld
timeline-email-failed = E-mail mislukt
timeline-email-bounced = E-mail onbestelbaar
timeline-email-opened = E-mail geopend
timeline-email-clicked = Link aangeklikt
timeline-form-submitted = Formulier ingevuld
timeline-sequence-entered = Reeks gestart
timeline-sequence-changed = Reeks gewijzigd
timeline-sequence-left = Reeks verlaten

## Datums

date-long = { $day } { $month } { $year }
date-time = { $date }, { $time }
month-1 = januari
month-2 = februari
month-3 = maart
month-4 = april
month-5 = mei
month-6 = juni
month-7 = juli
month-8 = augustus
month-9 = september
month-10 = oktober
month-11 = november
month-12 = december
