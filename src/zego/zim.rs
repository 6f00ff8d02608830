//! ZIM's synchronous pre-send callback (`before_send_msg`): ZIM holds the message until the
//! answer says what to do with it.

/// What the answer to `before_send_msg` tells ZIM to do with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BeforeSendVerdict {
    /// No opinion: ZIM's own default applies (and its moderation, when enabled).
    #[default]
    Neutral,
    /// Deliver it, even if ZIM's moderation would not.
    Send,
    /// Tell the sender it was sent, but deliver it to no one.
    SilentSend,
    /// Do not deliver it.
    Block,
}

impl BeforeSendVerdict {
    /// The names `ZEGO_BRIDGE_ZIM_BEFORE_SEND_VERDICT` takes, in code order.
    pub const NAMES: &'static [&'static str] = &["neutral", "send", "silent_send", "block"];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "neutral" => BeforeSendVerdict::Neutral,
            "send" => BeforeSendVerdict::Send,
            "silent_send" => BeforeSendVerdict::SilentSend,
            "block" => BeforeSendVerdict::Block,
            _ => return None,
        })
    }

    /// ZIM's `result` code.
    pub fn code(self) -> u8 {
        match self {
            BeforeSendVerdict::Neutral => 0,
            BeforeSendVerdict::Send => 1,
            BeforeSendVerdict::SilentSend => 2,
            BeforeSendVerdict::Block => 3,
        }
    }
}

/// The body of the answer, as ZIM reads it.
#[derive(Debug, serde::Serialize)]
pub struct BeforeSendAnswer {
    pub result: u8,
}

impl From<BeforeSendVerdict> for BeforeSendAnswer {
    fn from(verdict: BeforeSendVerdict) -> Self {
        BeforeSendAnswer {
            result: verdict.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes() {
        for (code, name) in BeforeSendVerdict::NAMES.iter().enumerate() {
            let verdict = BeforeSendVerdict::from_name(name).unwrap();
            assert_eq!(usize::from(verdict.code()), code);
        }
        assert_eq!(
            serde_json::to_string(&BeforeSendAnswer::from(BeforeSendVerdict::default())).unwrap(),
            r#"{"result":0}"#
        );
    }
}
