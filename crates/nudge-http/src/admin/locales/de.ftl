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

## Gruppen, Felder und Tags.

nav-groups = Gruppen
nav-fields = Felder
nav-tags = Tags
form-refused = Diese Änderung wurde abgelehnt.
groups-title = Gruppen
groups-none = Es gibt noch keine Gruppen.
groups-new-title = Neue Gruppe
groups-create = Gruppe anlegen
groups-parent = Übergeordnete Gruppe
groups-top = (oberste Ebene)
groups-new-name = Neuer Name
groups-rename = Umbenennen
groups-move = Verschieben
groups-delete = Löschen
groups-not-empty = Diese Gruppe hat noch Kontakte oder Untergruppen. Verschieben oder entfernen Sie diese zuerst.
groups-in-use = Eine Sequenz oder ein Formular verwendet diese Gruppe. Entfernen Sie sie dort zuerst.
fields-title = Eigene Felder
fields-none = Es gibt noch keine eigenen Felder.
fields-new-title = Neues Feld
fields-create = Feld anlegen
fields-key = Schlüssel
fields-label = Bezeichnung
fields-type = Typ
fields-options = Optionen
fields-options-help = Für Auswahlfelder: eine Option pro Zeile.
fields-delete = Löschen
field-type-text = Text
field-type-number = Zahl
field-type-date = Datum
field-type-boolean = Ja/Nein
field-type-choice = Auswahl
field-type-multi_choice = Mehrfachauswahl
tags-title = Tags
tags-none = Es gibt noch keine Tags.
tags-new-title = Neuer Tag
tags-create = Tag anlegen
tags-contacts = Kontakte
tags-delete = Löschen

## Enrolments (sequence recipients)
nav-enrolments = Empfänger
enrolments-title = Automailer-Empfänger
enrolments-refused = Nicht ausgeführt:
enrolments-all-sequences = Alle Automailer
enrolments-contact = Kontakt
enrolments-contact-help = Eine E-Mail-Adresse oder eine Kontakt-ID.
enrolments-contact-unknown = Kein Kontakt hat diese E-Mail-Adresse oder ID.
enrolments-sort = Sortieren nach:
enrolments-sort-last-asc = letzte Nachricht, älteste zuerst
enrolments-sort-last-desc = letzte Nachricht, neueste zuerst
enrolments-sort-next-asc = nächste Nachricht, früheste zuerst
enrolments-sort-next-desc = nächste Nachricht, späteste zuerst
enrolments-actions = Aktionen
enrolments-pause = Pausieren
enrolments-resume = Fortsetzen
enrolments-reactivate = Reaktivieren
enrolments-postpone = Verschieben
enrolments-until = Verschieben bis (UTC)
enrolments-none = Keine passenden Empfänger.
enrolments-start-title = Automailer für einen Kontakt starten
enrolments-start = Automailer starten

## Das Versandprotokoll.

nav-messages = Nachrichten
messages-title = Nachrichten
messages-contact = Kontakt-ID
messages-skip-rule = Übersprungen, weil
messages-attempts = Versuche
messages-to = An
messages-due = Fällig
messages-sent = Gesendet
messages-none = Keine passenden Nachrichten.
skip-rule-pending_unconfirmed = noch nicht bestätigt
skip-rule-unsubscribed = abgemeldet
skip-rule-transactional_only = nur transaktional
skip-rule-bounced = unzustellbar
skip-rule-complained = Beschwerde
skip-rule-pending_not_allowed = unbestätigte Kontakte nicht erlaubt

## Sequences
nav-sequences = Automailer
sequences-title = Automailer
sequences-all-recipients = Alle Empfänger aller Automailer
sequences-recipients = Empfänger
sequences-name = Name
sequences-messages = Nachrichten
sequences-none = Es gibt noch keine Automailer.
sequences-new-title = Neuer Automailer
sequences-create = Automailer anlegen
sequence-started = Gestartet: { $enrolled } neu, { $already } waren schon dabei.
sequence-message = Nachricht { $n }
sequence-position = Position
sequence-delay = Wartezeit nach der vorigen Nachricht
sequence-delay-help = ISO-8601-Dauer: P3D sind drei Tage, PT12H zwölf Stunden, P0D sofort.
sequence-html = HTML
sequence-text = Nur-Text (aus dem HTML erzeugt, wenn leer)
sequence-remove = Diese Nachricht entfernen
sequence-new-message = Eine Nachricht hinzufügen
sequence-window = Versandfenster
sequence-window-help = Nachrichten gehen nur an diesen Tagen zwischen diesen Zeiten hinaus, in der Zeitzone des Kontakts. Leer lassen, um jederzeit zu senden.
sequence-window-from = Von
sequence-window-to = Bis
sequence-start-groups = Startgruppen
sequence-condition = Bedingung
sequence-condition-help = Nur Kontakte, deren Feld einen dieser Werte hat (durch Kommas getrennt), erhalten die Nachrichten.
sequence-condition-field = Feld
sequence-condition-values = Werte
sequence-save = Automailer speichern
sequence-start-title = Für einen Kontakt oder eine Gruppe starten
sequence-start-unknown = Diesen Kontakt oder diese Gruppe gibt es nicht.
day-mon = Mo
day-tue = Di
day-wed = Mi
day-thu = Do
day-fri = Fr
day-sat = Sa
day-sun = So

## Einstellungen: Benutzer und Versandkonten.

nav-users = Benutzer
nav-smtp = Versandkonten
users-title = Benutzer
users-role = Rolle
users-language-browser = wie der Browser
users-new-title = Neuer Benutzer
users-password = Passwort
users-password-help = Mindestens { $count } Zeichen. Geben Sie es dem Benutzer persönlich; es wird nicht wieder angezeigt.
users-create = Benutzer anlegen
smtp-title = Versandkonten
smtp-none = Es gibt noch keine Versandkonten; Mail geht an das beim Start angegebene Relay.
smtp-server = Server
smtp-from = Absender
smtp-limits = Grenzen
smtp-limits-text = { $rate } pro Sekunde (0: keine Grenze), { $daily } pro Tag (0: keine Grenze), Gewicht { $weight }
smtp-actions = Aktionen
smtp-edit = Bearbeiten
smtp-test = Verbindung testen
smtp-test-ok = Der Server hat geantwortet und die Verbindung angenommen.
smtp-test-failed = Der Verbindungstest ist fehlgeschlagen.
smtp-delete = Löschen
smtp-new-title = Neues Versandkonto
smtp-edit-title = Versandkonto bearbeiten
smtp-host = Host
smtp-port = Port
smtp-tls = Verschlüsselung
smtp-tls-starttls = STARTTLS
smtp-tls-tls = TLS
smtp-tls-none = keine
smtp-username = Benutzername
smtp-password = Passwort
smtp-password-set = gesetzt
smtp-password-none = keins
smtp-password-help = Nur zum Versand gespeichert; wird nie wieder angezeigt.
smtp-password-keep = Leer lassen, um das gespeicherte Passwort zu behalten.
smtp-password-clear = Gespeichertes Passwort entfernen
smtp-from-email = Absenderadresse
smtp-from-name = Absendername
smtp-rate = Nachrichten pro Sekunde (0: keine Grenze)
smtp-daily = Nachrichten pro Tag (0: keine Grenze)
smtp-weight = Gewicht (Anteil an der Mail)
smtp-tracking = Öffnungen und Klicks verfolgen
smtp-create = Konto anlegen
smtp-save = Speichern
smtp-cancel = Abbrechen
nav-dkim = DKIM
dkim-title = DKIM-Schlüssel
dkim-intro = Mail von einer Domain mit einem Schlüssel hier wird signiert. Veröffentlichen Sie den DNS-TXT-Eintrag jedes Schlüssels, damit Empfänger die Signatur prüfen können.
dkim-none = Es gibt noch keine Schlüssel.
dkim-selector = Selektor
dkim-algorithm = Algorithmus
dkim-algorithm-rsa = RSA 2048 (überall geprüft)
dkim-algorithm-ed25519 = Ed25519 (klein; noch nicht überall geprüft)
dkim-record-name = Name des DNS-Eintrags (TXT)
dkim-record-value = Wert des DNS-Eintrags
dkim-generate-title = Schlüssel erzeugen
dkim-generate-help = Ein neuer Schlüssel ersetzt den bisherigen der Domain: Veröffentlichen Sie den Eintrag vor dem Versand.
dkim-domain = Domain
dkim-generate = Schlüssel erzeugen

## Forms
nav-forms = Formulare
forms-title = Formulare
forms-hosted = Gehostete Seite
forms-double-opt-in = Double-Opt-in (zuerst eine Bestätigungs-E-Mail)
forms-embed = Einbettungscode (in Ihre Webseite einfügen)
forms-none = Es gibt noch keine Formulare.
forms-new-title = Neues Formular
forms-slug = Adresse
forms-slug-help = Kleinbuchstaben, Ziffern und Bindestriche; die gehostete Seite ist /f/ gefolgt davon.
forms-email-label = Beschriftung des E-Mail-Felds
forms-first-name = Nach dem Vornamen fragen
forms-first-name-label = Beschriftung des Vornamensfelds
forms-groups = Gruppen
forms-group-choice = als Kontrollkästchen angeboten
forms-group-fixed = immer beigetreten
forms-sequence = Zu startender Automailer
forms-message = Danke-Text
forms-redirect = Oder den Browser zu dieser URL schicken
forms-notify = Diese Adressen benachrichtigen (durch Kommas getrennt)
forms-create = Formular anlegen
nav-api-keys = API-Schlüssel
api-keys-title = API-Schlüssel
api-keys-none = Es gibt noch keine API-Schlüssel.
api-keys-scopes = Berechtigungen
api-keys-every = alle Berechtigungen, jetzt und künftig
api-keys-new-title = Neuer API-Schlüssel
api-keys-create = Schlüssel anlegen
api-keys-shown-once = Der neue Schlüssel wird nur dieses eine Mal angezeigt: Kopieren Sie ihn jetzt. Nudge speichert nur einen Hash davon.
sequence-preview = Vorschau
sequence-preview-message = Nachricht
sequence-preview-show = Vorschau zeigen
sequence-preview-no-message = Diese Nachricht gibt es nicht.
sequence-preview-no-contact = Kein Kontakt hat diese E-Mail-Adresse oder ID.
sequence-test-send = Test an mich senden
sequence-test-queued = Ein Test der Nachricht ist an { $email } eingereiht.
sequence-test-no-contact = Kein Kontakt hat Ihre Adresse { $email }; legen Sie einen an, um Tests zu erhalten.
