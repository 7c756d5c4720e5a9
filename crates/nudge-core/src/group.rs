//! The group tree: unlimited depth, no cycles, and selection that includes descendants.

use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A snapshot of the parent links of all groups.
#[derive(Debug, Clone, Default)]
pub struct GroupTree {
    parent: HashMap<Uuid, Option<Uuid>>,
    children: HashMap<Uuid, Vec<Uuid>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("no such group")]
    UnknownParent,
    #[error("would make the group its own ancestor")]
    Cycle,
}

impl GroupTree {
    pub fn new(links: impl IntoIterator<Item = (Uuid, Option<Uuid>)>) -> Self {
        let mut tree = Self::default();
        for (id, parent) in links {
            tree.parent.insert(id, parent);
            if let Some(p) = parent {
                tree.children.entry(p).or_default().push(id);
            }
        }
        tree
    }

    pub fn contains(&self, id: Uuid) -> bool {
        self.parent.contains_key(&id)
    }

    /// The group and every group below it, the group first.
    pub fn with_descendants(&self, id: Uuid) -> Vec<Uuid> {
        let mut out = vec![id];
        let mut seen: HashSet<Uuid> = HashSet::from([id]);
        let mut i = 0;
        while i < out.len() {
            if let Some(kids) = self.children.get(&out[i]) {
                for kid in kids {
                    if seen.insert(*kid) {
                        out.push(*kid);
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// Checks that `id` may hang below `new_parent` (`None` = at the top).
    pub fn check_parent(
        &self,
        id: Option<Uuid>,
        new_parent: Option<Uuid>,
    ) -> Result<(), TreeError> {
        let Some(parent) = new_parent else {
            return Ok(());
        };
        if !self.contains(parent) {
            return Err(TreeError::UnknownParent);
        }
        let Some(id) = id else {
            return Ok(());
        };
        // Walk up from the new parent; meeting `id` means `id` would be its own ancestor. The
        // step bound guards against a cycle already present in stored data.
        let mut at = Some(parent);
        let mut steps = 0;
        while let Some(current) = at {
            if current == id || steps > self.parent.len() {
                return Err(TreeError::Cycle);
            }
            at = self.parent.get(&current).copied().flatten();
            steps += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// 1 ─┬─ 2 ── 4
    ///    └─ 3
    /// 5
    fn tree() -> GroupTree {
        GroupTree::new([
            (id(1), None),
            (id(2), Some(id(1))),
            (id(3), Some(id(1))),
            (id(4), Some(id(2))),
            (id(5), None),
        ])
    }

    #[test]
    fn selection_includes_all_descendants() {
        let t = tree();
        let mut got = t.with_descendants(id(1));
        got.sort();
        assert_eq!(got, vec![id(1), id(2), id(3), id(4)]);
        assert_eq!(t.with_descendants(id(4)), vec![id(4)]);
        assert_eq!(t.with_descendants(id(5)), vec![id(5)]);
    }

    #[test]
    fn parent_changes() {
        let t = tree();
        let cases: &[(Option<u128>, Option<u128>, Result<(), TreeError>)] = &[
            (Some(4), Some(5), Ok(())),
            (Some(2), None, Ok(())),
            (None, Some(4), Ok(())),
            (Some(1), Some(4), Err(TreeError::Cycle)),
            (Some(2), Some(4), Err(TreeError::Cycle)),
            (Some(2), Some(2), Err(TreeError::Cycle)),
            (Some(2), Some(99), Err(TreeError::UnknownParent)),
            (None, Some(99), Err(TreeError::UnknownParent)),
        ];
        for (group, parent, expected) in cases {
            assert_eq!(
                t.check_parent(group.map(id), parent.map(id)),
                *expected,
                "{group:?} under {parent:?}"
            );
        }
    }

    #[test]
    fn deep_trees_work() {
        let links = (1..=10_000u128).map(|n| (id(n), (n > 1).then(|| id(n - 1))));
        let t = GroupTree::new(links);
        assert_eq!(t.with_descendants(id(1)).len(), 10_000);
        assert_eq!(
            t.check_parent(Some(id(1)), Some(id(10_000))),
            Err(TreeError::Cycle)
        );
    }
}
