# Die Verwaltung auf Deutsch: dieselben Nachrichten wie en.ftl.

app-name = Nudge
skip-to-content = Zum Inhalt
nav-label = Hauptmenü
nav-dashboard = Übersicht
nav-contacts = Kontakte

role-owner = Eigentümer
role-admin = Administrator
role-editor = Redakteur
role-viewer = Leser

language-label = Sprache
language-en = English
language-nl = Nederlands
language-de = Deutsch
language-save = Wechseln
sign-out = Abmelden

## Anmelden

sign-in-title = Anmelden
sign-in-button = Anmelden
sign-in-error-invalid = Die E-Mail-Adresse oder das Passwort ist falsch.
sign-in-error-locked = Zu viele fehlgeschlagene Anmeldungen. Versuchen Sie es in { $minutes ->
    [one] einer Minute
   *[other] { $minutes } Minuten
} erneut.

## Fehlerseiten

error-back = Zurück zur Übersicht
error-not-found-title = Nicht gefunden
error-not-found = Diese Seite oder dieser Datensatz existiert nicht (mehr).
error-forbidden-title = Nicht erlaubt
error-forbidden = Ihre Rolle erlaubt das nicht. Fragen Sie einen Eigentümer oder Administrator.
error-csrf-title = Formular abgelaufen
error-csrf = Dieses Formular kam nicht von einer aktuellen Seite von Nudge; es wurde nichts geändert. Laden Sie die Seite neu und versuchen Sie es noch einmal.
error-bad-request-title = Anfrage nicht lesbar
error-bad-request = Der Link oder das Formular enthält Werte, die Nudge nicht lesen kann.
error-too-large-title = Zu groß
error-too-large = Das Gesendete ist größer, als Nudge annimmt.
error-internal-title = Etwas ist schiefgegangen
error-internal = Bei uns ist etwas schiefgegangen; es wurde protokolliert. Bitte versuchen Sie es erneut.

## Felder und Spalten

field-email = E-Mail-Adresse
field-password = Passwort
field-first-name = Vorname
field-last-name = Nachname
field-phone = Telefon
field-language = Sprache
field-time-zone = Zeitzone
field-source = Quelle
column-name = Name
column-status = Status
column-contacts = Kontakte
column-share = Anteil
column-created = Angelegt
column-updated = Geändert
column-sequence = Serie
column-last-message = Letzte Nachricht
column-next-message = Nächste Nachricht
column-subject = Betreff
column-class = Art
form-has-errors = Bitte korrigieren Sie die markierten Felder.
yes = ja
no = nein
percent = { $value } %

## Status

status-subscribed = Angemeldet
status-pending = Unbestätigt
status-unsubscribed = Abgemeldet
status-transactional = Nur Transaktionsmails
status-bounced = Unzustellbar
status-complained = Beschwerde

## Übersicht

dashboard-title = Übersicht
dashboard-contacts-by-status = Kontakte nach Status
dashboard-status-chart-title = Anteil der Kontakte je Status
contacts-count = { $count ->
    [one] { $count } Kontakt
   *[other] { $count } Kontakte
}

## Kontakte

contacts-title = Kontakte
contacts-found = { $count ->
    [0] Keine Kontakte gefunden.
    [one] Ein Kontakt gefunden.
   *[other] { $count } Kontakte gefunden.
}
contacts-none = Keine Kontakte anzuzeigen.
filter-search = Suche (Anfang von E-Mail oder Name)
filter-any = Alle
filter-group = Gruppe
filter-tag = Schlagwort
filter-apply = Filtern
filter-clear = Filter löschen
pager-label = Seiten
pager-first = Erste Seite
pager-next = Nächste Seite
contact-new-title = Neuer Kontakt
contact-create = Kontakt anlegen

## Ein Kontakt

contact-details = Angaben
contact-groups = Gruppen
contact-no-groups = In keiner Gruppe.
contact-tags = Schlagwörter
contact-no-tags = Keine Schlagwörter.
contact-enrolments = Serien
contact-no-enrolments = In keiner Serie.
contact-messages = Nachrichten
contact-no-messages = Noch keine Nachrichten.
contact-timeline = Verlauf
timeline-older = Ältere Einträge
status-new = Neuer Status
status-reason = Grund
status-reason-required = Um diesen Status zu verlassen, ist ein Grund nötig, etwa wie der Kontakt um die Rückkehr gebeten hat.
status-reason-optional = Ein Grund ist freiwillig; er erscheint im Verlauf.
status-change = Status ändern

enrolment-active = aktiv
enrolment-suspended = ausgesetzt
enrolment-paused = pausiert
enrolment-completed = abgeschlossen
enrolment-cancelled = abgebrochen

message-class-campaign = Kampagne
message-class-automation = Automatisierung
message-class-transactional = Transaktion
message-status-queued = in der Warteschlange
message-status-sending = wird gesendet
message-status-sent = gesendet
message-status-retrying = neuer Versuch
message-status-failed = fehlgeschlagen
message-status-skipped = übersprungen

timeline-contact-created = Angelegt
timeline-suppression-matched = Früher gelöscht
timeline-field-changed = Feld geändert
timeline-group-joined = Gruppe beigetreten
timeline-group-left = Gruppe verlassen
timeline-tag-added = Schlagwort gesetzt
timeline-tag-removed = Schlagwort entfernt
timeline-status-changed = Status geändert
timeline-imported = Importiert
timeline-note = Notiz
timeline-email-queued = E-Mail eingereiht
timeline-email-sent = E-Mail gesendet
timeline-email-skipped = E-Mail übersprungen
timeline-email-deferred = E-Mail verschoben
timeline-email-failed = E-Mail fehlgeschlagen
timeline-email-bounced = E-Mail unzustellbar
timeline-email-opened = E-Mail geöffnet
timeline-email-clicked = Link geklickt
timeline-form-submitted = Formular ausgefüllt
timeline-sequence-entered = Serie begonnen
timeline-sequence-changed = Serie geändert
timeline-sequence-left = Serie verlassen

## Datum: Tag mit Punkt, Monatsname, Jahr; die Uhrzeit im 24-Stunden-Format.

date-long = { $day }. { $month } { $year }
date-time = { $date }, { $time }
month-1 = Januar
month-2 = Februar
month-3 = März
month-4 = April
month-5 = Mai
month-6 = Juni
month-7 = Juli
month-8 = August
month-9 = September
month-10 = Oktober
month-11 = November
month-12 = Dezember
