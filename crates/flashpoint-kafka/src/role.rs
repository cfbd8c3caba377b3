//! The worker's stages, and which of them a process runs.

use crate::config::KafkaConfig;

/// One stage of the worker: names its consumer group, its metric labels and its health flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Score,
    Aggregate,
    Notify,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Stage::Score, Stage::Aggregate, Stage::Notify];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Score => "score",
            Stage::Aggregate => "aggregate",
            Stage::Notify => "notify",
        }
    }

    /// The stage's consumer group: `<group_id>-score`, `<group_id>-aggregate` or `<group_id>-notify`.
    pub fn group(self, cfg: &KafkaConfig) -> String {
        format!("{}-{}", cfg.group_id, self.as_str())
    }
}

/// Which stages this process runs (the `--role` flag): one stage, or all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Only(Stage),
    /// Every stage; the notify stage only when `[[notify.routes]]` are configured.
    All,
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        &[Role::Only(Stage::Score), Role::Only(Stage::Aggregate), Role::Only(Stage::Notify), Role::All]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(match self {
            Role::Only(s) => clap::builder::PossibleValue::new(s.as_str()),
            Role::All => clap::builder::PossibleValue::new("all")
                .help("Every stage; the notify stage only when [[notify.routes]] are configured"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ValueEnum;

    #[test]
    fn a_role_is_named_by_its_stage_or_all() {
        for s in Stage::ALL {
            assert_eq!(Role::from_str(s.as_str(), false), Ok(Role::Only(s)));
        }
        assert_eq!(Role::from_str("all", false), Ok(Role::All));
        assert!(Role::from_str("scorer", false).is_err());
    }
}
