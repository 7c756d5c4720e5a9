//! Who may do what: user roles for the admin UI and scopes for API keys.

use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Owner,
    Admin,
    Editor,
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Editor => "editor",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Role::Owner, Role::Admin, Role::Editor, Role::Viewer]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| "must be one of owner, admin, editor, viewer".to_owned())
    }
}

/// A part of the admin UI, as far as roles are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Area {
    /// The dashboard and other overviews.
    Dashboard,
    /// Contacts, their import and export.
    Contacts,
    /// Groups, custom fields and tags themselves.
    Lists,
    Forms,
    Sequences,
    Templates,
    /// The send ledger and the enrolment overview.
    Messages,
    /// Sending accounts, DKIM keys, API keys.
    Settings,
    Users,
    /// A user's own sign-out and language.
    Account,
}

impl Area {
    pub const ALL: [Area; 10] = [
        Area::Dashboard,
        Area::Contacts,
        Area::Lists,
        Area::Forms,
        Area::Sequences,
        Area::Templates,
        Area::Messages,
        Area::Settings,
        Area::Users,
        Area::Account,
    ];
}

impl Role {
    /// Whether this role may see (`write` false) or change (`write` true) an area. Owners and
    /// admins may do everything; editors change contacts, forms, sequences and templates;
    /// viewers change nothing. Settings and users (keys, passwords of relays, who may sign in)
    /// are not shown to editors and viewers at all. Everyone manages their own account.
    pub fn may(self, area: Area, write: bool) -> bool {
        match (self, area) {
            (Role::Owner | Role::Admin, _) | (_, Area::Account) => true,
            (_, Area::Settings | Area::Users) => false,
            (Role::Viewer, _) => !write,
            (Role::Editor, Area::Contacts | Area::Forms | Area::Sequences | Area::Templates) => {
                true
            }
            (Role::Editor, _) => !write,
        }
    }
}

/// What an API key may do. A key stores a list of these, or `*` for every scope, present and
/// future.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "contacts:read")]
    ContactsRead,
    #[serde(rename = "contacts:write")]
    ContactsWrite,
    /// Erasing is separate from writing: it cannot be undone.
    #[serde(rename = "contacts:erase")]
    ContactsErase,
    /// Custom fields, groups and tags themselves (not a contact's membership).
    #[serde(rename = "lists:write")]
    ListsWrite,
    /// The send ledger.
    #[serde(rename = "messages:read")]
    MessagesRead,
    /// Queueing messages with `POST /api/v1/messages`.
    #[serde(rename = "messages:send")]
    MessagesSend,
    /// Server settings: sending accounts (their passwords are never shown, even with it).
    #[serde(rename = "settings:read")]
    SettingsRead,
    /// Changing server settings: sending accounts.
    #[serde(rename = "settings:write")]
    SettingsWrite,
    /// Stored email templates.
    #[serde(rename = "templates:read")]
    TemplatesRead,
    /// Creating, changing and deleting stored email templates.
    #[serde(rename = "templates:write")]
    TemplatesWrite,
    /// Sequences, forms and the enrolment overview.
    #[serde(rename = "automations:read")]
    AutomationsRead,
    /// Creating and changing sequences and forms, starting sequences and acting on enrolments.
    #[serde(rename = "automations:write")]
    AutomationsWrite,
}

impl Scope {
    pub const ALL: [Scope; 12] = [
        Scope::ContactsRead,
        Scope::ContactsWrite,
        Scope::ContactsErase,
        Scope::ListsWrite,
        Scope::MessagesRead,
        Scope::MessagesSend,
        Scope::SettingsRead,
        Scope::SettingsWrite,
        Scope::TemplatesRead,
        Scope::TemplatesWrite,
        Scope::AutomationsRead,
        Scope::AutomationsWrite,
    ];
    pub const EVERY: &'static str = "*";

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ContactsRead => "contacts:read",
            Scope::ContactsWrite => "contacts:write",
            Scope::ContactsErase => "contacts:erase",
            Scope::ListsWrite => "lists:write",
            Scope::MessagesRead => "messages:read",
            Scope::MessagesSend => "messages:send",
            Scope::SettingsRead => "settings:read",
            Scope::SettingsWrite => "settings:write",
            Scope::TemplatesRead => "templates:read",
            Scope::TemplatesWrite => "templates:write",
            Scope::AutomationsRead => "automations:read",
            Scope::AutomationsWrite => "automations:write",
        }
    }

    /// Whether a key with the stored `granted` list has this scope.
    pub fn granted_by(self, granted: &[String]) -> bool {
        granted
            .iter()
            .any(|g| g == Self::EVERY || g == self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                format!("must be one of {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let every = vec![Scope::EVERY.to_owned()];
        let read = vec!["contacts:read".to_owned()];
        for scope in Scope::ALL {
            assert!(scope.granted_by(&every));
            assert_eq!(scope.granted_by(&read), scope == Scope::ContactsRead);
            assert_eq!(scope.as_str().parse(), Ok(scope));
        }
        assert!("contacts".parse::<Scope>().is_err());
        assert_eq!("viewer".parse(), Ok(Role::Viewer));
    }

    #[test]
    fn roles_may_see_and_change_their_areas_only() {
        use Area::*;
        // (role, areas it may change, areas it may only see); the rest it may not see.
        let table: [(Role, &[Area], &[Area]); 4] = [
            (Role::Owner, &Area::ALL, &[]),
            (Role::Admin, &Area::ALL, &[]),
            (
                Role::Editor,
                &[Contacts, Forms, Sequences, Templates, Account],
                &[Dashboard, Lists, Messages],
            ),
            (
                Role::Viewer,
                &[Account],
                &[
                    Dashboard, Contacts, Lists, Forms, Sequences, Templates, Messages,
                ],
            ),
        ];
        for (role, change, see) in table {
            for area in Area::ALL {
                let (w, r) = (
                    change.contains(&area),
                    change.contains(&area) || see.contains(&area),
                );
                assert_eq!(role.may(area, true), w, "{role:?} changes {area:?}");
                assert_eq!(role.may(area, false), r, "{role:?} sees {area:?}");
            }
        }
    }
}
