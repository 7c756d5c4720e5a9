# The admin UI in English. Every message here must also be in nl.ftl and de.ftl (a test checks).

app-name = Nudge
skip-to-content = Skip to the content
nav-label = Main
nav-dashboard = Dashboard
nav-contacts = Contacts

role-owner = owner
role-admin = admin
role-editor = editor
role-viewer = viewer

language-label = Language
language-en = English
language-nl = Nederlands
language-de = Deutsch
language-save = Switch
sign-out = Sign out

## Sign-in

sign-in-title = Sign in
sign-in-button = Sign in
sign-in-error-invalid = The email address or the password is wrong.
sign-in-error-locked = Too many failed sign-ins. Try again in { $minutes ->
    [one] one minute
   *[other] { $minutes } minutes
}.

## Error pages

error-back = Back to the dashboard
error-not-found-title = Not found
error-not-found = This page or record does not exist (any more).
error-forbidden-title = Not allowed
error-forbidden = Your role does not allow this. Ask an owner or an admin.
error-csrf-title = Form expired
error-csrf = This form was not sent from a current page of Nudge, so nothing was changed. Reload the page and try again.
error-bad-request-title = Cannot read the request
error-bad-request = The link or form has values Nudge cannot read.
error-too-large-title = Too large
error-too-large = What was sent is larger than Nudge accepts.
error-internal-title = Something went wrong
error-internal = Something went wrong on our side; it has been logged. Please try again.

## Fields and columns

field-email = Email address
field-password = Password
field-first-name = First name
field-last-name = Last name
field-phone = Phone
field-language = Language
field-time-zone = Time zone
field-source = Source
column-name = Name
column-status = Status
column-contacts = Contacts
column-share = Share
column-created = Created
column-updated = Changed
column-sequence = Sequence
column-last-message = Last message
column-next-message = Next message
column-subject = Subject
column-class = Kind
form-has-errors = Please correct the marked fields.
yes = yes
no = no
percent = { $value }%

## Statuses

status-subscribed = Subscribed
status-pending = Pending
status-unsubscribed = Unsubscribed
status-transactional = Transactional only
status-bounced = Bounced
status-complained = Complained

## Dashboard

dashboard-title = Dashboard
dashboard-contacts-by-status = Contacts by status
dashboard-status-chart-title = Share of contacts per status
contacts-count = { $count ->
    [one] { $count } contact
   *[other] { $count } contacts
}

## Contacts

contacts-title = Contacts
contacts-found = { $count ->
    [0] No contacts match.
    [one] One contact matches.
   *[other] { $count } contacts match.
}
contacts-none = No contacts to show.
filter-search = Search (start of email or name)
filter-any = Any
filter-group = Group
filter-tag = Tag
filter-apply = Filter
filter-clear = Clear filters
pager-label = Pages
pager-first = First page
pager-next = Next page
contact-new-title = New contact
contact-create = Create contact

## One contact

contact-details = Details
contact-groups = Groups
contact-no-groups = In no group.
contact-tags = Tags
contact-no-tags = No tags.
contact-enrolments = Sequences
contact-no-enrolments = In no sequence.
contact-messages = Messages
contact-no-messages = No messages yet.
contact-timeline = Timeline
timeline-older = Older entries
status-new = New status
status-reason = Reason
status-reason-required = Leaving this status needs a reason, such as how the contact asked to come back.
status-reason-optional = A reason is optional; it goes to the timeline.
status-change = Change status

enrolment-active = active
enrolment-suspended = suspended
enrolment-paused = paused
enrolment-completed = completed
enrolment-cancelled = cancelled

message-class-campaign = campaign
message-class-automation = automation
message-class-transactional = transactional
message-status-queued = queued
message-status-sending = sending
message-status-sent = sent
message-status-retrying = retrying
message-status-failed = failed
message-status-skipped = skipped

timeline-contact-created = Created
timeline-suppression-matched = Earlier erasure
timeline-field-changed = Field changed
timeline-group-joined = Joined a group
timeline-group-left = Left a group
timeline-tag-added = Tagged
timeline-tag-removed = Tag removed
timeline-status-changed = Status changed
timeline-imported = Imported
timeline-note = Note
timeline-email-queued = Email queued
timeline-email-sent = Email sent
timeline-email-skipped = Email skipped
timeline-email-deferred = Email deferred
timeline-email-failed = Email failed
timeline-email-bounced = Email bounced
timeline-email-opened = Email opened
timeline-email-clicked = Link clicked
timeline-form-submitted = Form submitted
timeline-sequence-entered = Entered a sequence
timeline-sequence-changed = Sequence changed
timeline-sequence-left = Left a sequence

## Dates: the day, the month's name and the year; the time is 24-hour.

date-long = { $day } { $month } { $year }
date-time = { $date }, { $time }
month-1 = January
month-2 = February
month-3 = March
month-4 = April
month-5 = May
month-6 = June
month-7 = July
month-8 = August
month-9 = September
month-10 = October
month-11 = November
month-12 = December

## Groups, fields and tags.

nav-groups = Groups
nav-fields = Fields
nav-tags = Tags
form-refused = That change was refused.
groups-title = Groups
groups-none = There are no groups yet.
groups-new-title = New group
groups-create = Create group
groups-parent = Parent group
groups-top = (top level)
groups-new-name = New name
groups-rename = Rename
groups-move = Move
groups-delete = Delete
groups-not-empty = This group still has contacts or subgroups. Move or remove them first.
groups-in-use = A sequence or a form uses this group. Take it out of them first.
fields-title = Custom fields
fields-none = There are no custom fields yet.
fields-new-title = New field
fields-create = Create field
fields-key = Key
fields-label = Label
fields-type = Type
fields-options = Options
fields-options-help = For choice fields: one option a line.
fields-delete = Delete
field-type-text = Text
field-type-number = Number
field-type-date = Date
field-type-boolean = Yes/no
field-type-choice = Choice
field-type-multi_choice = Multiple choice
tags-title = Tags
tags-none = There are no tags yet.
tags-new-title = New tag
tags-create = Create tag
tags-contacts = Contacts
tags-delete = Delete

## Enrolments (sequence recipients)
nav-enrolments = Recipients
enrolments-title = Sequence recipients
enrolments-refused = Not done:
enrolments-all-sequences = All sequences
enrolments-contact = Contact
enrolments-contact-help = An email address or a contact id.
enrolments-contact-unknown = No contact has this email address or id.
enrolments-sort = Sort by:
enrolments-sort-last-asc = last message, oldest first
enrolments-sort-last-desc = last message, newest first
enrolments-sort-next-asc = next message, soonest first
enrolments-sort-next-desc = next message, latest first
enrolments-actions = Actions
enrolments-pause = Pause
enrolments-resume = Resume
enrolments-reactivate = Reactivate
enrolments-postpone = Postpone
enrolments-until = Postpone until (UTC)
enrolments-none = No recipients match.
enrolments-start-title = Start a sequence for a contact
enrolments-start = Start sequence

## The send ledger.

nav-messages = Messages
messages-title = Messages
messages-contact = Contact ID
messages-skip-rule = Skipped because
messages-attempts = Attempts
messages-to = To
messages-due = Due
messages-sent = Sent
messages-none = No messages match.
skip-rule-pending_unconfirmed = not confirmed yet
skip-rule-unsubscribed = unsubscribed
skip-rule-transactional_only = transactional only
skip-rule-bounced = bounced
skip-rule-complained = complained
skip-rule-pending_not_allowed = pending contacts not allowed

## Sequences
nav-sequences = Sequences
sequences-title = Sequences
sequences-all-recipients = All recipients of all sequences
sequences-recipients = Recipients
sequences-name = Name
sequences-messages = Messages
sequences-none = There are no sequences yet.
sequences-new-title = New sequence
sequences-create = Create sequence
sequence-started = Started: { $enrolled } new, { $already } already in it.
sequence-message = Message { $n }
sequence-position = Position
sequence-delay = Delay after the previous message
sequence-delay-help = ISO 8601 durations: P3D is three days, PT12H twelve hours, P0D at once.
sequence-html = HTML
sequence-text = Plain text (made from the HTML when empty)
sequence-remove = Remove this message
sequence-new-message = Add a message
sequence-window = Sending window
sequence-window-help = Messages go out only on these days between these times, in the contact's time zone. Leave empty to send at any time.
sequence-window-from = From
sequence-window-to = To
sequence-start-groups = Start groups
sequence-condition = Condition
sequence-condition-help = Only contacts whose field has one of these values (comma-separated) receive the messages.
sequence-condition-field = Field
sequence-condition-values = Values
sequence-save = Save sequence
sequence-start-title = Start for a contact or a group
sequence-start-unknown = There is no such contact or group.
day-mon = Mon
day-tue = Tue
day-wed = Wed
day-thu = Thu
day-fri = Fri
day-sat = Sat
day-sun = Sun

## Settings: users and sending accounts.

nav-users = Users
nav-smtp = Sending accounts
users-title = Users
users-role = Role
users-language-browser = as the browser
users-new-title = New user
users-password = Password
users-password-help = At least { $count } characters. Give it to the user in person; it is not shown again.
users-create = Create user
smtp-title = Sending accounts
smtp-none = There are no sending accounts yet; mail goes to the relay given at start-up.
smtp-server = Server
smtp-from = Sender
smtp-limits = Limits
smtp-limits-text = { $rate } per second (0: no limit), { $daily } a day (0: no limit), weight { $weight }
smtp-actions = Actions
smtp-edit = Edit
smtp-test = Test connection
smtp-test-ok = The server answered and accepted the connection.
smtp-test-failed = The connection test failed.
smtp-delete = Delete
smtp-new-title = New sending account
smtp-edit-title = Edit sending account
smtp-host = Host
smtp-port = Port
smtp-tls = Encryption
smtp-tls-starttls = STARTTLS
smtp-tls-tls = TLS
smtp-tls-none = none
smtp-username = User name
smtp-password = Password
smtp-password-set = set
smtp-password-none = none
smtp-password-help = Stored for sending only; never shown again.
smtp-password-keep = Leave empty to keep the stored password.
smtp-password-clear = Remove the stored password
smtp-from-email = Sender address
smtp-from-name = Sender name
smtp-rate = Messages per second (0: no limit)
smtp-daily = Messages per day (0: no limit)
smtp-weight = Weight (share of the mail)
smtp-tracking = Track opens and clicks
smtp-create = Create account
smtp-save = Save
smtp-cancel = Cancel
nav-dkim = DKIM
dkim-title = DKIM signing keys
dkim-intro = Mail from a domain with a key here is signed. Publish each key's DNS TXT record so that receivers can check the signature.
dkim-none = There are no signing keys yet.
dkim-selector = Selector
dkim-algorithm = Algorithm
dkim-algorithm-rsa = RSA 2048 (verified everywhere)
dkim-algorithm-ed25519 = Ed25519 (small; not verified everywhere yet)
dkim-record-name = DNS record name (TXT)
dkim-record-value = DNS record value
dkim-generate-title = Make a key
dkim-generate-help = A new key replaces the one the domain had: publish its record before sending.
dkim-domain = Domain
dkim-generate = Make key

## Forms
nav-forms = Forms
forms-title = Forms
forms-hosted = Hosted page
forms-double-opt-in = Double opt-in (a confirmation email first)
forms-embed = Embed snippet (paste into your web page)
forms-none = There are no forms yet.
forms-new-title = New form
forms-slug = Address
forms-slug-help = Lower-case letters, digits and hyphens; the hosted page is /f/ followed by it.
forms-email-label = Label of the email field
forms-first-name = Ask for the first name
forms-first-name-label = Label of the first-name field
forms-groups = Groups
forms-group-choice = offered as a checkbox
forms-group-fixed = always joined
forms-sequence = Sequence to start
forms-message = Thank-you text
forms-redirect = Or send the browser to this URL
forms-notify = Notify these addresses (comma-separated)
forms-create = Create form
nav-api-keys = API keys
api-keys-title = API keys
api-keys-none = There are no API keys yet.
api-keys-scopes = Scopes
api-keys-every = every scope, present and future
api-keys-new-title = New API key
api-keys-create = Create key
api-keys-shown-once = The new key is shown only this once: copy it now. Nudge keeps only a hash of it.
sequence-preview = Preview
sequence-preview-message = Message
sequence-preview-show = Show preview
sequence-preview-no-message = There is no such message.
sequence-preview-no-contact = No contact has this email address or id.
sequence-test-send = Send a test to me
sequence-test-queued = A test of the message is queued to { $email }.
sequence-test-no-contact = No contact has your address { $email }; create one to receive tests.
