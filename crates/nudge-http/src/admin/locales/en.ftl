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
