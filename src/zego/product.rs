//! The ZEGOCLOUD products that POST callbacks, and how a body tells which one sent it.
//!
//! ZEGOCLOUD configures one callback URL per product, so the bridge gives each product its own
//! path; the body classifier is the guard that makes a misconfigured URL show at once, and the
//! product decides the timestamp's unit and which secrets sign.

use super::body::Object;

/// A product that sends server callbacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    /// Real-time audio and video (and live streaming): rooms, streams, mixing, recording,
    /// moderation.
    Rtc,
    /// In-app Chat.
    Zim,
    AiAgent,
    /// Cloud real-time speech recognition.
    Asr,
    DigitalHuman,
    CloudRecording,
    CloudPlayer,
    /// Document conversion.
    SuperBoard,
    /// Live-comment game reports: refused, see [`Product::refusal`].
    MiniGame,
}

/// The products one bridge serves (`ZEGO_BRIDGE_PRODUCTS`): their paths take callbacks and their
/// topics are expected in Kafka. A company that uses RTC alone need not create, nor be alerted
/// about, the topics of In-app Chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductSet(u16);

impl ProductSet {
    /// Every product (the default).
    pub const ALL: ProductSet = ProductSet(u16::MAX);

    /// `all`, or product names ([`Product::name`]) separated by commas.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim() == "all" {
            return Ok(ProductSet::ALL);
        }
        let mut set = ProductSet(0);
        for name in text.split(',').map(str::trim) {
            match Product::from_name(name) {
                Some(product) if product.refusal().is_none() => set.0 |= product.bit(),
                _ => {
                    return Err(format!(
                        "{name:?} is not a product the bridge serves: give `all`, or some of \
                         {} separated by commas",
                        ProductSet::ALL.names().join(", ")
                    ))
                }
            }
        }
        Ok(set)
    }

    pub fn serves(self, product: Product) -> bool {
        self.0 & product.bit() != 0
    }

    /// The names of the products served, as `ZEGO_BRIDGE_PRODUCTS` spells them.
    pub fn names(self) -> Vec<&'static str> {
        Product::ALL
            .into_iter()
            .filter(|product| product.refusal().is_none() && self.serves(*product))
            .map(Product::name)
            .collect()
    }
}

/// The unit of a product's `timestamp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampUnit {
    Seconds,
    Milliseconds,
    /// The vendor's pages disagree: milliseconds from 10^12 up (which is 2001-09 in ms, and the
    /// year 33658 in seconds), seconds below.
    Either,
}

impl TimestampUnit {
    /// Values from here up are milliseconds when the unit is [`TimestampUnit::Either`].
    pub const MILLISECONDS_FROM: i64 = 1_000_000_000_000;

    /// `value` in Unix milliseconds; `None` when it overflows.
    pub fn to_millis(self, value: i64) -> Option<i64> {
        match self {
            TimestampUnit::Milliseconds => Some(value),
            TimestampUnit::Either if value.unsigned_abs() >= Self::MILLISECONDS_FROM as u64 => {
                Some(value)
            }
            TimestampUnit::Seconds | TimestampUnit::Either => value.checked_mul(1000),
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            TimestampUnit::Seconds => "Unix time in seconds",
            TimestampUnit::Milliseconds => "Unix time in milliseconds",
            TimestampUnit::Either => "Unix time in seconds or milliseconds",
        }
    }
}

impl Product {
    pub const ALL: [Product; 9] = [
        Product::Rtc,
        Product::Zim,
        Product::AiAgent,
        Product::Asr,
        Product::DigitalHuman,
        Product::CloudRecording,
        Product::CloudPlayer,
        Product::SuperBoard,
        Product::MiniGame,
    ];

    /// The name in event types, topics, metrics and configuration: `ai_agent`.
    pub fn name(self) -> &'static str {
        match self {
            Product::Rtc => "rtc",
            Product::Zim => "zim",
            Product::AiAgent => "ai_agent",
            Product::Asr => "asr",
            Product::DigitalHuman => "digital_human",
            Product::CloudRecording => "cloud_recording",
            Product::CloudPlayer => "cloud_player",
            Product::SuperBoard => "super_board",
            Product::MiniGame => "minigame",
        }
    }

    /// The smallest body limit this product's callbacks need, whatever
    /// `ZEGO_BRIDGE_MAX_BODY_BYTES` says. AI Agent's `UserAudioData` carries "the first 1–1.5 s"
    /// of each round's audio as base64 PCM at 16 kHz: 1.5 s of 16-bit mono is 64,000 bytes of
    /// base64 before the rest of the body, over the 64 KiB default. 256 KiB takes 3.9 s of it,
    /// or 1.9 s of stereo: room for a vendor that sends a little more than it says. ZIM's
    /// messages go up to 32 KB (its configurable maximum), which escaping can triple or more
    /// (`\u00e9` is six bytes for one), and a `before_send_msg` refused for its size is a
    /// message not sent: the same 256 KiB.
    pub fn body_limit_floor(self) -> usize {
        match self {
            Product::AiAgent | Product::Zim => 256 * 1024,
            _ => 0,
        }
    }

    /// The product as ZEGOCLOUD's console and documentation name it.
    pub fn title(self) -> &'static str {
        match self {
            Product::Rtc => "Real-time audio and video (RTC)",
            Product::Zim => "In-app Chat (ZIM)",
            Product::AiAgent => "AI Agent",
            Product::Asr => "Cloud real-time ASR",
            Product::DigitalHuman => "Digital Human",
            Product::CloudRecording => "Cloud Recording",
            Product::CloudPlayer => "Cloud Player",
            Product::SuperBoard => "Super Board",
            Product::MiniGame => "MiniGameEngine",
        }
    }

    /// The last segment of the product's callback path (`/v1/callbacks/{segment}`); `None` for
    /// RTC, whose path is `/v1/callbacks` itself.
    pub fn path_segment(self) -> Option<&'static str> {
        match self {
            Product::Rtc => None,
            Product::Zim => Some("zim"),
            Product::AiAgent => Some("ai-agent"),
            Product::Asr => Some("asr"),
            Product::DigitalHuman => Some("digital-human"),
            Product::CloudRecording => Some("cloud-recording"),
            Product::CloudPlayer => Some("cloud-player"),
            Product::SuperBoard => Some("super-board"),
            Product::MiniGame => Some("minigame"),
        }
    }

    /// The path ZEGOCLOUD's console is given for this product's callbacks: public contract.
    pub fn callback_path(self) -> String {
        match self.path_segment() {
            None => "/v1/callbacks".to_owned(),
            Some(segment) => format!("/v1/callbacks/{segment}"),
        }
    }

    /// The product whose path ends in `segment`.
    pub fn from_path_segment(segment: &str) -> Option<Product> {
        Product::ALL
            .into_iter()
            .find(|product| product.path_segment() == Some(segment))
    }

    fn bit(self) -> u16 {
        1 << self as u16
    }

    /// The product with this [`Product::name`].
    pub fn from_name(name: &str) -> Option<Product> {
        Product::ALL
            .into_iter()
            .find(|product| product.name() == name)
    }

    /// The unit of `timestamp` (which is also the signed value, whatever its unit).
    pub fn timestamp_unit(self) -> TimestampUnit {
        match self {
            // Documented in seconds, and so the bridge always took them.
            Product::Rtc | Product::CloudRecording | Product::CloudPlayer | Product::MiniGame => {
                TimestampUnit::Seconds
            }
            Product::Asr => TimestampUnit::Milliseconds,
            // ZIM: seconds in most pages and every sample, milliseconds in the room and group
            // pages. AI Agent: seconds before 2025-04-25, milliseconds since. Digital Human:
            // milliseconds since a 2026-05 edit, seconds before and in the samples. Super
            // Board: no unit stated, a sample in seconds.
            Product::Zim | Product::AiAgent | Product::DigitalHuman | Product::SuperBoard => {
                TimestampUnit::Either
            }
        }
    }

    /// Whether callbacks that name this product on `self`'s path are taken: a product's own,
    /// and Cloud Recording's on the RTC path too, where the bridge always took them.
    pub fn takes(self, sender: Product) -> bool {
        self == sender || (self == Product::Rtc && sender == Product::CloudRecording)
    }

    /// Why the bridge does not take this product's callbacks, when it does not.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Product::MiniGame => Some(
                "MiniGameEngine callbacks are not supported: ZEGOCLOUD's pages describe the \
                 SHA-1 hex signature of the other products, but MiniGameEngine's own sample \
                 carries a URL-encoded base64 signature over a `SignatureNonce`, so the bridge \
                 cannot verify them and will not publish what it cannot verify (see \
                 docs/products.md)",
            ),
            _ => None,
        }
    }
}

/// Which product sent this body, from its keys and event name (PRODUCTS.md §11.3); `None` when
/// the body does not say (an event no product documents, or keys of no known family).
pub fn classify(root: &Object<'_>) -> Option<Product> {
    let has = |key: &str| root.get(key).is_some();
    let text = |key: &str| -> Option<String> {
        let scalar = root.get(key)?.node.scalar().ok()??;
        Some(scalar.text.trim().to_ascii_lowercase())
    };
    if let Some(event) = text("event") {
        return classify_event(&event, &has);
    }
    if has("eventtype") {
        // A string `EventType` with `AgentInstanceId` is AI Agent before 2025-04.
        if has("agentinstanceid") {
            return Some(Product::AiAgent);
        }
        let cloud_player_app_id = root.entries().iter().any(|entry| entry.key == "AppID");
        if cloud_player_app_id || has("playerid") || has("uploadtaskid") {
            return Some(Product::CloudPlayer);
        }
        if has("taskid") {
            return Some(Product::DigitalHuman);
        }
        return None;
    }
    if has("event_type") {
        return Some(Product::CloudRecording);
    }
    if has("reporttype") && has("gamesource") {
        return Some(Product::MiniGame);
    }
    None
}

fn classify_event(event: &str, has: &dyn Fn(&str) -> bool) -> Option<Product> {
    const RTC_EVENTS: &[&str] = &[
        "room_close",
        "room_login",
        "room_logout",
        "record",
        "compose",
        "procedure",
        "snapshot",
    ];
    const RTC_PREFIXES: &[&str] = &["stream_", "mix_", "transcode_", "censor_"];
    const ZIM_EVENTS: &[&str] = &[
        "user_action",
        "send_msg",
        "before_send_msg",
        "bot_msg",
        "room_destroy",
        "room_enter",
        "room_exit",
        "apply_join_group",
        "invited_join_group",
    ];
    const ZIM_PREFIXES: &[&str] = &["call_", "group_"];
    const AI_AGENT_ONLY: &[&str] = &[
        "llmresult",
        "interrupted",
        "userspeakaction",
        "agentinstancestatus",
        "agentspeakaction",
        "useraudiodata",
        "agentinstancecreated",
        "agentinstancedeleted",
        "agentinstancemetainfo",
    ];
    const SHARED_BY_AI_AGENT_AND_ASR: &[&str] = &["asrresult", "exception"];
    let starts = |prefixes: &[&str]| prefixes.iter().any(|prefix| event.starts_with(prefix));
    if event == "cvt_finish" {
        Some(Product::SuperBoard)
    } else if event == "room_create" {
        // RTC's carries the room's session; ZIM's its creator, name and attributes. One with
        // neither is taken as its path says: it does not clearly belong elsewhere.
        if has("room_session_id") || has("id_name") || has("room_seq") {
            Some(Product::Rtc)
        } else if has("operator_account") || has("room_name") || has("attributes") {
            Some(Product::Zim)
        } else {
            None
        }
    } else if RTC_EVENTS.contains(&event) || starts(RTC_PREFIXES) {
        Some(Product::Rtc)
    } else if ZIM_EVENTS.contains(&event) || starts(ZIM_PREFIXES) {
        Some(Product::Zim)
    } else if has("agentinstanceid") || AI_AGENT_ONLY.contains(&event) {
        Some(Product::AiAgent)
    } else if event == "translationresult"
        || (SHARED_BY_AI_AGENT_AND_ASR.contains(&event) && has("taskid"))
    {
        Some(Product::Asr)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zego::{sniff, RawCallback};

    #[test]
    fn a_product_set_is_all_or_a_list_of_names() {
        assert_eq!(ProductSet::parse("all"), Ok(ProductSet::ALL));
        let set = ProductSet::parse(" rtc , cloud_recording").unwrap();
        assert!(set.serves(Product::Rtc) && set.serves(Product::CloudRecording));
        assert!(!set.serves(Product::Zim));
        assert_eq!(set.names(), ["rtc", "cloud_recording"]);
        assert_eq!(ProductSet::ALL.names().len(), Product::ALL.len() - 1);
        for bad in ["", "rtc,", "RTC", "chat", "minigame", "rtc,all"] {
            let err = ProductSet::parse(bad).unwrap_err();
            assert!(err.contains("ai_agent"), "{bad:?}: {err}");
        }
    }

    fn product_of(body: &str) -> Option<Product> {
        let callback = RawCallback::decode(body.as_bytes(), sniff(body.as_bytes())).unwrap();
        classify(&callback.root)
    }

    #[test]
    fn the_colliding_names_are_told_apart() {
        // RTC and ZIM both send `room_create`.
        assert_eq!(
            product_of(r#"{"event":"room_create","room_id":"r","room_session_id":"1"}"#),
            Some(Product::Rtc)
        );
        assert_eq!(
            product_of(r#"{"event":"room_create","room_id":"r","operator_account":"u"}"#),
            Some(Product::Zim)
        );
        assert_eq!(
            product_of(r#"{"event":"room_create","room_id":"r"}"#),
            None,
            "neither product's marks: the path decides"
        );
        // AI Agent and ASR both send `ASRResult` and `Exception`.
        for event in ["ASRResult", "Exception"] {
            assert_eq!(
                product_of(&format!(r#"{{"Event":"{event}","AgentInstanceId":"1"}}"#)),
                Some(Product::AiAgent)
            );
            assert_eq!(
                product_of(&format!(r#"{{"Event":"{event}","TaskId":"t"}}"#)),
                Some(Product::Asr)
            );
        }
        // Digital Human and Cloud Player both number their events 1 to 4.
        assert_eq!(
            product_of(r#"{"EventType":1,"AppID":1,"RoomId":"r"}"#),
            Some(Product::CloudPlayer)
        );
        assert_eq!(
            product_of(r#"{"EventType":1,"AppId":1,"TaskId":"t"}"#),
            Some(Product::DigitalHuman)
        );
        assert_eq!(
            product_of(r#"{"EventType":1,"AppId":1,"UploadTaskId":"t"}"#),
            Some(Product::CloudPlayer)
        );
        // AI Agent before 2025-04: a string `EventType`.
        assert_eq!(
            product_of(r#"{"EventType":"LLMResult","AgentInstanceId":"1"}"#),
            Some(Product::AiAgent)
        );
    }

    #[test]
    fn every_family_is_recognised() {
        for (body, product) in [
            (r#"{"event":"stream_create"}"#, Product::Rtc),
            ("event=room_login&appid=1", Product::Rtc),
            (r#"{"Event":"censor_audio_v2_result"}"#, Product::Rtc),
            (r#"{"event":"send_msg"}"#, Product::Zim),
            (r#"{"event":"call_invite"}"#, Product::Zim),
            (r#"{"event":"Apply_join_group"}"#, Product::Zim),
            (r#"{"event":"cvt_finish","data":{}}"#, Product::SuperBoard),
            (r#"{"Event":"LLMResult"}"#, Product::AiAgent),
            (r#"{"Event":"TranslationResult"}"#, Product::Asr),
            (r#"{"event_type":1,"app_id":1}"#, Product::CloudRecording),
            (r#"{"ReportType":2,"GameSource":"zego"}"#, Product::MiniGame),
        ] {
            assert_eq!(product_of(body), Some(product), "{body}");
        }
        for body in [
            r#"{"event":"room_user_count"}"#,
            r#"{"Event":"ASRResult"}"#,
            r#"{"EventType":7}"#,
            r#"{"a":1}"#,
        ] {
            assert_eq!(product_of(body), None, "{body}");
        }
    }

    #[test]
    fn timestamps_in_either_unit() {
        assert_eq!(
            TimestampUnit::Seconds.to_millis(1_700_000_000),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            TimestampUnit::Milliseconds.to_millis(1_700_000_000_123),
            Some(1_700_000_000_123)
        );
        assert_eq!(
            TimestampUnit::Either.to_millis(1_700_000_000),
            Some(1_700_000_000_000)
        );
        assert_eq!(
            TimestampUnit::Either.to_millis(1_700_000_000_123),
            Some(1_700_000_000_123)
        );
        assert_eq!(TimestampUnit::Seconds.to_millis(i64::MAX), None);
    }

    #[test]
    fn paths_and_names_round_trip() {
        for product in Product::ALL {
            assert_eq!(Product::from_name(product.name()), Some(product));
            if let Some(segment) = product.path_segment() {
                assert_eq!(Product::from_path_segment(segment), Some(product));
            }
        }
        assert_eq!(Product::from_path_segment("rtc"), None);
    }
}
