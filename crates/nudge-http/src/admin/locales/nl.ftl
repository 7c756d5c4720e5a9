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

## Groepen, velden en tags.

nav-groups = Groepen
nav-fields = Velden
nav-tags = Tags
form-refused = Die wijziging is geweigerd.
groups-title = Groepen
groups-none = Er zijn nog geen groepen.
groups-new-title = Nieuwe groep
groups-create = Groep aanmaken
groups-parent = Bovenliggende groep
groups-top = (hoogste niveau)
groups-new-name = Nieuwe naam
groups-rename = Hernoemen
groups-move = Verplaatsen
groups-delete = Verwijderen
groups-not-empty = Deze groep heeft nog contacten of subgroepen. Verplaats of verwijder die eerst.
groups-in-use = Een reeks of formulier gebruikt deze groep. Haal de groep daar eerst uit.
fields-title = Eigen velden
fields-none = Er zijn nog geen eigen velden.
fields-new-title = Nieuw veld
fields-create = Veld aanmaken
fields-key = Sleutel
fields-label = Label
fields-type = Soort
fields-options = Opties
fields-options-help = Voor keuzevelden: één optie per regel.
fields-delete = Verwijderen
field-type-text = Tekst
field-type-number = Getal
field-type-date = Datum
field-type-boolean = Ja/nee
field-type-choice = Keuze
field-type-multi_choice = Meerkeuze
tags-title = Tags
tags-none = Er zijn nog geen tags.
tags-new-title = Nieuwe tag
tags-create = Tag aanmaken
tags-contacts = Contacten
tags-delete = Verwijderen

## Enrolments (sequence recipients)
nav-enrolments = Ontvangers
enrolments-title = Ontvangers van reeksen
enrolments-refused = Niet uitgevoerd:
enrolments-all-sequences = Alle reeksen
enrolments-contact = Contact
enrolments-contact-help = Een e-mailadres of een contact-id.
enrolments-contact-unknown = Geen contact heeft dit e-mailadres of deze id.
enrolments-sort = Sorteren op:
enrolments-sort-last-asc = laatste bericht, oudste eerst
enrolments-sort-last-desc = laatste bericht, nieuwste eerst
enrolments-sort-next-asc = volgend bericht, eerstvolgende eerst
enrolments-sort-next-desc = volgend bericht, laatste eerst
enrolments-actions = Acties
enrolments-pause = Pauzeren
enrolments-resume = Hervatten
enrolments-reactivate = Heractiveren
enrolments-postpone = Uitstellen
enrolments-until = Uitstellen tot (UTC)
enrolments-none = Geen ontvangers gevonden.
enrolments-start-title = Een reeks starten voor een contact
enrolments-start = Reeks starten

## Het verzendlogboek.

nav-messages = Berichten
messages-title = Berichten
messages-contact = Contact-ID
messages-skip-rule = Overgeslagen omdat
messages-attempts = Pogingen
messages-to = Aan
messages-due = Gepland
messages-sent = Verzonden
messages-none = Geen berichten gevonden.
skip-rule-pending_unconfirmed = nog niet bevestigd
skip-rule-unsubscribed = afgemeld
skip-rule-transactional_only = alleen transactioneel
skip-rule-bounced = gebounced
skip-rule-complained = klacht ingediend
skip-rule-pending_not_allowed = onbevestigde contacten niet toegestaan

## Sequences
nav-sequences = Reeksen
sequences-title = Reeksen
sequences-all-recipients = Alle ontvangers van alle reeksen
sequences-recipients = Ontvangers
sequences-name = Naam
sequences-messages = Berichten
sequences-none = Er zijn nog geen reeksen.
sequences-new-title = Nieuwe reeks
sequences-create = Reeks aanmaken
sequence-started = Gestart: { $enrolled } nieuw, { $already } zaten er al in.
sequence-message = Bericht { $n }
sequence-position = Positie
sequence-delay = Wachttijd na het vorige bericht
sequence-delay-help = ISO 8601-duur: P3D is drie dagen, PT12H twaalf uur, P0D meteen.
sequence-html = HTML
sequence-text = Platte tekst (uit de HTML gemaakt als leeg)
sequence-remove = Dit bericht verwijderen
sequence-new-message = Een bericht toevoegen
sequence-window = Verzendvenster
sequence-window-help = Berichten gaan alleen op deze dagen tussen deze tijden uit, in de tijdzone van het contact. Leeg laten om altijd te verzenden.
sequence-window-from = Van
sequence-window-to = Tot
sequence-start-groups = Startgroepen
sequence-condition = Voorwaarde
sequence-condition-help = Alleen contacten van wie het veld een van deze waarden heeft (gescheiden door komma's) krijgen de berichten.
sequence-condition-field = Veld
sequence-condition-values = Waarden
sequence-save = Reeks opslaan
sequence-start-title = Starten voor een contact of een groep
sequence-start-unknown = Dit contact of deze groep bestaat niet.
day-mon = ma
day-tue = di
day-wed = wo
day-thu = do
day-fri = vr
day-sat = za
day-sun = zo

## Instellingen: gebruikers en verzendaccounts.

nav-users = Gebruikers
nav-smtp = Verzendaccounts
users-title = Gebruikers
users-role = Rol
users-language-browser = zoals de browser
users-new-title = Nieuwe gebruiker
users-password = Wachtwoord
users-password-help = Minstens { $count } tekens. Geef het de gebruiker persoonlijk; het wordt niet meer getoond.
users-create = Gebruiker aanmaken
smtp-title = Verzendaccounts
smtp-none = Er zijn nog geen verzendaccounts; mail gaat naar de relay die bij het starten is opgegeven.
smtp-server = Server
smtp-from = Afzender
smtp-limits = Limieten
smtp-limits-text = { $rate } per seconde (0: geen limiet), { $daily } per dag (0: geen limiet), gewicht { $weight }
smtp-actions = Acties
smtp-edit = Bewerken
smtp-test = Verbinding testen
smtp-test-ok = De server antwoordde en accepteerde de verbinding.
smtp-test-failed = De verbindingstest is mislukt.
smtp-delete = Verwijderen
smtp-new-title = Nieuw verzendaccount
smtp-edit-title = Verzendaccount bewerken
smtp-host = Host
smtp-port = Poort
smtp-tls = Versleuteling
smtp-tls-starttls = STARTTLS
smtp-tls-tls = TLS
smtp-tls-none = geen
smtp-username = Gebruikersnaam
smtp-password = Wachtwoord
smtp-password-set = ingesteld
smtp-password-none = geen
smtp-password-help = Alleen bewaard om te verzenden; wordt nooit meer getoond.
smtp-password-keep = Laat leeg om het bewaarde wachtwoord te houden.
smtp-password-clear = Bewaard wachtwoord verwijderen
smtp-from-email = Afzenderadres
smtp-from-name = Afzendernaam
smtp-rate = Berichten per seconde (0: geen limiet)
smtp-daily = Berichten per dag (0: geen limiet)
smtp-weight = Gewicht (aandeel van de mail)
smtp-tracking = Openen en klikken volgen
smtp-create = Account aanmaken
smtp-save = Opslaan
smtp-cancel = Annuleren
nav-dkim = DKIM
dkim-title = DKIM-sleutels
dkim-intro = Mail van een domein met een sleutel hier wordt ondertekend. Publiceer het DNS-TXT-record van elke sleutel, zodat ontvangers de handtekening kunnen controleren.
dkim-none = Er zijn nog geen sleutels.
dkim-selector = Selector
dkim-algorithm = Algoritme
dkim-algorithm-rsa = RSA 2048 (overal gecontroleerd)
dkim-algorithm-ed25519 = Ed25519 (klein; nog niet overal gecontroleerd)
dkim-record-name = Naam van het DNS-record (TXT)
dkim-record-value = Waarde van het DNS-record
dkim-generate-title = Sleutel maken
dkim-generate-help = Een nieuwe sleutel vervangt die van het domein: publiceer het record voordat u verzendt.
dkim-domain = Domein
dkim-generate = Sleutel maken

## Forms
nav-forms = Formulieren
forms-title = Formulieren
forms-hosted = Gehoste pagina
forms-double-opt-in = Dubbele opt-in (eerst een bevestigingsmail)
forms-embed = Insluitcode (plak in uw webpagina)
forms-none = Er zijn nog geen formulieren.
forms-new-title = Nieuw formulier
forms-slug = Adres
forms-slug-help = Kleine letters, cijfers en koppeltekens; de gehoste pagina is /f/ gevolgd door dit adres.
forms-email-label = Label van het e-mailveld
forms-first-name = Naar de voornaam vragen
forms-first-name-label = Label van het voornaamveld
forms-groups = Groepen
forms-group-choice = als selectievakje aangeboden
forms-group-fixed = altijd lid
forms-sequence = Te starten reeks
forms-message = Bedanktekst
forms-redirect = Of stuur de browser naar deze URL
forms-notify = Deze adressen berichten (gescheiden door komma's)
forms-create = Formulier aanmaken
nav-api-keys = API-sleutels
api-keys-title = API-sleutels
api-keys-none = Er zijn nog geen API-sleutels.
api-keys-scopes = Rechten
api-keys-every = alle rechten, nu en later
api-keys-new-title = Nieuwe API-sleutel
api-keys-create = Sleutel aanmaken
api-keys-shown-once = De nieuwe sleutel wordt alleen nu getoond: kopieer hem nu. Nudge bewaart alleen een hash ervan.
sequence-preview = Voorbeeld
sequence-preview-message = Bericht
sequence-preview-show = Voorbeeld tonen
sequence-preview-no-message = Dit bericht bestaat niet.
sequence-preview-no-contact = Geen contact heeft dit e-mailadres of deze id.
sequence-test-send = Stuur mij een test
sequence-test-queued = Een test van het bericht staat klaar voor { $email }.
sequence-test-no-contact = Geen contact heeft uw adres { $email }; maak er een aan om tests te ontvangen.
