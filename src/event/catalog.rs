//! Every event type the bridge publishes: which ZEGO callback it comes from, its fields, where
//! each field is read from.
//!
//! This table is the one description of the normalized model: the normalizer follows it, the
//! JSON Schemas in `schemas/` are generated from it, and a test keeps both in step. RTC's types
//! (and Cloud Recording's) are here; each other product's are in a module of its own.

mod agents;
mod media;
mod zim;

pub use crate::zego::Product;
use crate::zego::TimestampUnit;

/// How a field's value is read and written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Text, kept exactly (including text that holds JSON).
    Str,
    /// JSON that the vendor sends either as text holding JSON or as the JSON itself (its table
    /// says one, its sample the other): published as text either way, the text as sent or the
    /// JSON's own, so that consumers parse one form.
    JsonText,
    /// A word from a small set, with the spaces around it removed (`"PC "` is `PC`).
    Token,
    /// A counter, code or sequence number: a JSON integer.
    Int,
    /// A 64-bit identifier: an exact decimal string.
    Id64,
    /// An instant in Unix milliseconds: a JSON integer, name ends in `_at_ms`.
    TimeMs,
    /// A `0`/`1` flag: a JSON boolean.
    Flag,
    /// A list of strings (a lone string becomes a list of one).
    StrList,
    /// A nested structure kept verbatim as JSON.
    Json,
    /// A code with a name: written as `<name>_code` (integer) and `<name>` (text).
    Enum(&'static [(i64, &'static str)]),
    /// `YYYY-MM-DD HH:MM:SS[.mmm]` in Beijing time (UTC+8), written as Unix milliseconds.
    BeijingTime,
}

/// Where a field may be found in the callback: a key path, matched ignoring ASCII case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub path: &'static [&'static str],
    /// The unit of a time field's value, converted to milliseconds.
    pub unit: TimestampUnit,
}

const fn at(path: &'static [&'static str]) -> Source {
    Source {
        path,
        unit: TimestampUnit::Milliseconds,
    }
}

const fn seconds(path: &'static [&'static str]) -> Source {
    Source {
        path,
        unit: TimestampUnit::Seconds,
    }
}

/// A time whose unit the vendor's pages contradict: milliseconds from 10^12, else seconds.
const fn epoch(path: &'static [&'static str]) -> Source {
    Source {
        path,
        unit: TimestampUnit::Either,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// Aliases in order of preference; when two are present and disagree, the first wins and
    /// the other is kept under `extra` with its original key.
    pub sources: &'static [Source],
    pub kind: FieldKind,
    pub doc: &'static str,
    /// Added to a type after the type was first released: records written before lack it, so
    /// its schema does not require it (docs/events.md, "How schemas evolve"). Declare such a
    /// field as `Field { added_later: true, ..field(…) }`.
    pub added_later: bool,
}

const fn field(
    name: &'static str,
    sources: &'static [Source],
    kind: FieldKind,
    doc: &'static str,
) -> Field {
    Field {
        name,
        sources,
        kind,
        doc,
        added_later: false,
    }
}

/// How an event's Kafka key is chosen, so that what must stay in order stays in one
/// partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRule {
    /// The first of these fields of the event that is a non-empty string.
    FirstOf(&'static [&'static str]),
    /// A ZIM conversation: `conv_type` and `conv_id`, and for a one-to-one conversation both
    /// users in a fixed order, so that both directions of it share a partition.
    Conversation,
    /// For a callback the bridge does not know: the first of these keys of the body (paths,
    /// ignoring ASCII case) that holds a non-empty scalar.
    Body(&'static [&'static [&'static str]]),
}

/// Whether ZEGO waits for the answer to decide something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Any 2xx: ZEGO only needs to know the callback arrived.
    Receipt,
    /// A 2xx whose body is `1`: RTC's recording callback, whose older page says "A response
    /// \"1\" means that the request has completed successfully. Other responses indicate a
    /// failed request." (docs.zegocloud.com article 9808); the current one takes any 2xx, so
    /// `1` satisfies both.
    ReceiptOne,
    /// ZIM's `before_send_msg`: the answer says whether the message is delivered, and ZIM
    /// waits for it only about 2.5 s.
    ZimVerdict,
}

/// What tells two callbacks of a type apart, so that the event id (`normalize::event_id`) is
/// shared by a callback sent again and never by two occurrences. The rule (docs/events.md,
/// "Event identity"): two deliveries share an id only when they are the same callback sent
/// again; where ZEGO does not say what a retry looks like, they do not. A duplicate in Kafka is
/// recoverable by its consumers; two real callbacks merged into one are lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// When the body carries every one of `distinct_by` (key paths, as the vendor names them,
    /// each a non-empty scalar), it names one occurrence: the vendor documents them as unique to
    /// it (a message id, a sequence number). The id is then the body's, without `timestamp`,
    /// `nonce` and `signature`, and a retry signed afresh keeps it. A body without one of them
    /// is identified as [`Identity::Delivery`] is.
    Body {
        distinct_by: &'static [&'static [&'static str]],
    },
    /// Nothing the vendor documents tells two occurrences apart in the body (two entries of one
    /// user into one room read the same but for `timestamp`): the id covers every value of the
    /// body, `timestamp` and `nonce` included, so only a delivery sent again as it was shares
    /// it. A retry that ZEGO signed afresh is published twice, with two ids.
    Delivery,
}

impl Identity {
    /// Whether the id of this callback covers `timestamp` and `nonce`: always for
    /// [`Identity::Delivery`], and for [`Identity::Body`] when the body lacks one of its keys
    /// (or holds it empty, or not as a scalar).
    pub fn covers_envelope(self, root: &crate::zego::Object<'_>) -> bool {
        match self {
            Identity::Body { distinct_by } => !distinct_by.iter().all(|path| {
                root.get_path(path).is_some_and(|entry| {
                    matches!(entry.node.scalar(), Ok(Some(scalar)) if !scalar.text.trim().is_empty())
                })
            }),
            Identity::Delivery => true,
        }
    }

    /// The identity of a type whose body names one occurrence by these keys.
    pub const fn body(distinct_by: &'static [&'static [&'static str]]) -> Self {
        Identity::Body { distinct_by }
    }

    /// What the generated reference says of the id of a type.
    pub fn describe(self) -> String {
        match self {
            Identity::Body { distinct_by } => format!(
                "the body without `timestamp`, `nonce` and `signature` when it carries {} (which \
                 name one occurrence: see [Event identity](#event-identity)); else also \
                 `timestamp` and `nonce`",
                distinct_by
                    .iter()
                    .map(|path| format!("`{}`", path.join(".")))
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
            Identity::Delivery => {
                "the whole body with `timestamp` and `nonce` (only a delivery sent again as it was shares the id)"
                    .to_owned()
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct EventType {
    /// The normalized type, also the topic suffix: `room.created`, `zim.message.sent`. Types of
    /// products other than RTC start with the product's name.
    pub name: &'static str,
    pub product: Product,
    /// The ZEGO callback(s) that produce it (for products that number their events, the
    /// number as text).
    pub zego_events: &'static [&'static str],
    pub description: &'static str,
    pub fields: &'static [Field],
    /// The field that says when the occurrence happened, if the callback carries one.
    pub occurred_at: Option<&'static str>,
    pub key: KeyRule,
    pub answer: Answer,
    /// What tells two of its callbacks apart (its event id).
    pub identity: Identity,
}

impl EventType {
    /// Whether the event carries `sent_at_ms` beside `sent_at`: the products after RTC, whose
    /// `timestamp` may be in milliseconds. RTC's envelope stays as its consumers know it.
    pub fn has_sent_at_ms(&self) -> bool {
        !matches!(self.product, Product::Rtc | Product::CloudRecording)
    }
}

/// RTC's key: the room, else the task, else the stream.
const RTC_KEY: KeyRule = KeyRule::FirstOf(&["room_id", "task_id", "stream_id"]);

/// A type of a product other than RTC.
const fn of(
    product: Product,
    name: &'static str,
    zego_events: &'static [&'static str],
    description: &'static str,
    key: KeyRule,
    fields: &'static [Field],
) -> EventType {
    EventType {
        name,
        product,
        zego_events,
        description,
        fields,
        occurred_at: None,
        key,
        answer: Answer::Receipt,
        identity: Identity::Delivery,
    }
}

use FieldKind::*;

// Enumerations, named as the documentation describes each code.
const ROOM_CLOSE_REASONS: &[(i64, &str)] = &[
    (0, "normal"),
    (1, "heartbeat_timeout"),
    (2, "last_member_offline"),
    (3, "last_member_kicked_out"),
];
const USER_ROLES: &[(i64, &str)] = &[(1, "host"), (2, "audience"), (4, "backend")];
const AUTH_LEVELS: &[(i64, &str)] = &[
    (0, "no_token"),
    (1, "token_v01"),
    (2, "token_v02"),
    (3, "token_v03"),
    (4, "token_v04"),
];
const TERMINAL_TYPES: &[(i64, &str)] = &[
    (0, "none"),
    (1, "pc"),
    (2, "ios"),
    (3, "android"),
    (4, "mac"),
    (5, "linux"),
    (6, "web"),
    (7, "mini_program"),
    (32, "unknown"),
];
const LOGOUT_REASONS: &[(i64, &str)] = &[
    (0, "normal"),
    (1, "heartbeat_timeout"),
    (2, "connection_lost"),
    (3, "duplicate_login_or_kicked_out"),
    (4, "token_expired"),
];
const STREAM_CLOSE_REASONS: &[(i64, &str)] = &[
    (0, "normal"),
    (1, "heartbeat_timeout"),
    (2, "duplicate_login"),
    (3, "kicked_out"),
    (4, "connection_lost"),
    (5, "room_cleared"),
    (100, "deleted_by_server_api"),
];
const TRANSCODE_STOP_REASONS: &[(i64, &str)] = &[(0, "stopped_by_user"), (1, "task_error")];
const COMPOSE_RESULTS: &[(i64, &str)] = &[
    (0, "success"),
    (40000, "bad_input"),
    (60000, "source_file_damaged"),
    (70000, "internal_error"),
];
const VAD_STATUSES: &[(i64, &str)] = &[(0, "silent"), (1, "speech")];
const MODERATION_TASK_STATUSES: &[(i64, &str)] = &[(0, "finished")];
const CLOUD_RECORDING_EVENT_TYPES: &[(i64, &str)] = &[
    (1, "upload_status"),
    (2, "abnormal_end"),
    (3, "image_download_failed"),
    (4, "room_without_streams"),
    (5, "completed"),
    (6, "stream_absent"),
    (7, "uploading"),
    (102, "segment_uploaded"),
    (201, "paused"),
    (202, "resumed"),
];
/// `event_type` of the legacy end-of-recording callback (doc-zh.zego.im article 5861): "1：录制正常结
/// 束，所有录制文件上传成功。2：录制异常结束，部分录制文件上传失败（file_info 中有至少一个文件状态不为
/// 3）。3：录制正常结束，没有产生录制文件（房间内没有用户推流）。"
const CLOUD_RECORDING_LEGACY_END_TYPES: &[(i64, &str)] = &[
    (1, "ended_all_uploaded"),
    (2, "ended_abnormally_partly_uploaded"),
    (3, "ended_without_files"),
];
const UPLOAD_STATUSES: &[(i64, &str)] = &[(1, "all_uploaded"), (2, "partially_uploaded")];
const MEDIA_TRACK_TYPES: &[(i64, &str)] = &[(1, "audio"), (2, "video"), (3, "audio_video")];

// Fields shared by several types.
const ROOM_ID: Field = field(
    "room_id",
    &[at(&["room_id"]), at(&["channel_id"])],
    Str,
    "Room ID (`room_id`, alias `channel_id`).",
);
const ROOM_SESSION_ID: Field = field(
    "room_session_id",
    &[at(&["room_session_id"]), at(&["room_seq"])],
    Id64,
    "ID of this lifetime of the room (`room_session_id`, alias `room_seq`).",
);
const STREAM_USER_ID: Field = field(
    "user_id",
    &[at(&["user_id"]), at(&["publish_id"])],
    Str,
    "Publisher's user ID (`user_id`, alias `publish_id`).",
);
const STREAM_USER_NAME: Field = field(
    "user_name",
    &[at(&["user_name"]), at(&["publish_name"])],
    Str,
    "Publisher's user name (`user_name`, alias `publish_name`).",
);
const STREAM_ID: Field = field(
    "stream_id",
    &[at(&["stream_id"]), at(&["stream_alias"])],
    Str,
    "Stream ID (`stream_id`, alias `stream_alias`).",
);
const STREAM_SID: Field = field(
    "stream_sid",
    &[at(&["stream_sid"])],
    Str,
    "Server-side unique stream ID.",
);
const STREAM_SEQ: Field = field(
    "stream_seq",
    &[at(&["stream_seq"])],
    Int,
    "Stream-list version, +1 on every stream change.",
);
const LOGIN_USER_ID: Field = field(
    "user_id",
    &[at(&["user_account"]), at(&["user_id"])],
    Str,
    "The client's user ID (`user_account`).",
);
const LOGIN_USER_NAME: Field = field(
    "user_name",
    &[at(&["user_nickname"]), at(&["user_name"])],
    Str,
    "The client's user name (`user_nickname`).",
);
const SESSION_ID: Field = field(
    "session_id",
    &[at(&["session_id"])],
    Id64,
    "The user's login session ID.",
);
const LOGIN_AT: Field = field(
    "login_at_ms",
    &[at(&["login_time"])],
    TimeMs,
    "When the user entered the room.",
);
const USER_ROLE: Field = field(
    "user_role",
    &[at(&["user_role"])],
    Enum(USER_ROLES),
    "Role: 1 host, 2 audience, 4 back-end user (recorder, moderation bot).",
);
const USER_UPDATE_SEQ: Field = field(
    "user_update_seq",
    &[at(&["user_update_seq"])],
    Int,
    "Member-list version, +1 on every entry and exit.",
);
const TASK_ID_SNAKE: Field = field("task_id", &[at(&["task_id"])], Str, "Task ID.");
const MIX_ROOM_ID: Field = field(
    "room_id",
    &[at(&["channel_id"]), at(&["room_id"])],
    Str,
    "Room of the mix (`channel_id`).",
);
const MIX_USER_ID: Field = field(
    "user_id",
    &[at(&["publish_id"]), at(&["user_id"])],
    Str,
    "User who requested the mix (`publish_id`).",
);
const MIX_SEQ: Field = field(
    "seq",
    &[at(&["seq"])],
    Int,
    "Increasing order number of mixing requests.",
);
const MIX_URL: Field = field(
    "mix_url",
    &[at(&["mix_url"])],
    Str,
    "RTMP URL of the mixed output.",
);
const MIX_STREAM_ID: Field = field(
    "mix_stream_id",
    &[at(&["mix_stream_alias"])],
    Str,
    "Stream ID of the mixed output (`mix_stream_alias`).",
);
const TRANSCODE_TASK_ID: Field = field("task_id", &[at(&["TaskId"])], Str, "Transcoding task ID.");
const TRANSCODE_USER_ID: Field = field(
    "user_id",
    &[at(&["UserId"])],
    Str,
    "Developer-defined ID of whoever started the task.",
);
const TRANSCODE_SEQUENCE: Field = field(
    "sequence",
    &[at(&["Sequence"])],
    Int,
    "Order number of the request.",
);
const TRANSCODE_STATUS: Field = field(
    "status",
    &[at(&["Status"])],
    Str,
    "`TranscodeStarted`, `TranscodeUpdated` or `TranscodeStopped`.",
);
const MODERATION_TASK_ID: Field = field(
    "task_id",
    &[at(&["TaskId"])],
    Str,
    "Moderation task ID returned by StartCensorAudioV2 / StartCensorVideoV2.",
);
const MODERATION_CODE: Field = field("code", &[at(&["Code"])], Int, "Result code, 0 = success.");
const MODERATION_MESSAGE: Field = field("message", &[at(&["Message"])], Str, "Result message.");
const RESULT_TASK_ID: Field = field(
    "result_task_id",
    &[at(&["ResultTaskId"])],
    Str,
    "ID of this verdict.",
);
const RISK_LEVEL: Field = field(
    "risk_level",
    &[at(&["Detail", "RiskLevel"])],
    Str,
    "`PASS`, `REVIEW` or `REJECT`.",
);
const RISK_DESCRIPTION: Field = field(
    "risk_description",
    &[at(&["Detail", "RiskDescription"])],
    Str,
    "Risk description.",
);
const RISK_LABEL1: Field = field(
    "risk_label1",
    &[at(&["Detail", "RiskLabel1"])],
    Str,
    "First-level risk label.",
);
const RISK_LABEL2: Field = field(
    "risk_label2",
    &[at(&["Detail", "RiskLabel2"])],
    Str,
    "Second-level risk label.",
);
const RISK_LABEL3: Field = field(
    "risk_label3",
    &[at(&["Detail", "RiskLabel3"])],
    Str,
    "Third-level risk label.",
);
const RISK_DETAIL: Field = field(
    "risk_detail",
    &[at(&["Detail", "RiskDetail"])],
    Json,
    "`Detail.RiskDetail`, verbatim.",
);
const RISK_INFO_LIST: Field = field(
    "risk_info_list",
    &[at(&["Detail", "RiskInfoList"])],
    Json,
    "`Detail.RiskInfoList`, verbatim.",
);
const BUSINESS_INFO_LIST: Field = field(
    "business_info_list",
    &[at(&["Detail", "BusinessInfoList"])],
    Json,
    "`Detail.BusinessInfoList`, verbatim.",
);
const AUDIO_URL: Field = field(
    "audio_url",
    &[at(&["Detail", "AudioUrl"])],
    Str,
    "URL of the judged audio segment.",
);
const PRE_AUDIO_URL: Field = field(
    "pre_audio_url",
    &[at(&["Detail", "PreAudioUrl"])],
    Str,
    "URL of the audio before the judged segment.",
);
const VAD_STATUS: Field = field(
    "vad_status",
    &[at(&["Detail", "VadStatus"])],
    Enum(VAD_STATUSES),
    "Voice activity: 0 silent, 1 speech.",
);
const AUX_ROOM_ID: Field = field("room_id", &[at(&["AuxInfo", "RoomId"])], Str, "Room ID.");
const AUX_STREAM_ID: Field = field(
    "stream_id",
    &[at(&["AuxInfo", "StreamId"])],
    Str,
    "Stream ID.",
);
const AUX_USER_ID: Field = field("user_id", &[at(&["AuxInfo", "UserId"])], Str, "User ID.");
const PROCESS_BEGAN_AT: Field = field(
    "process_began_at_ms",
    &[at(&["AuxInfo", "ProcessBeginTime"])],
    TimeMs,
    "When moderation of this segment began.",
);
const PROCESS_FINISHED_AT: Field = field(
    "process_finished_at_ms",
    &[at(&["AuxInfo", "ProcessFinishTime"])],
    TimeMs,
    "When moderation of this segment finished.",
);
const MODERATION_STATUS: Field = field(
    "status",
    &[at(&["Status"])],
    Enum(MODERATION_TASK_STATUSES),
    "Task status: 0 finished.",
);
const CENSORED_STREAM_SECONDS: Field = field(
    "censored_stream_seconds",
    &[at(&["AuxInfo", "CensorStreamTime"])],
    Int,
    "How long the stream was moderated, in seconds.",
);

const MODERATION_STATUS_FIELDS: &[Field] = &[
    MODERATION_TASK_ID,
    MODERATION_CODE,
    MODERATION_MESSAGE,
    MODERATION_STATUS,
    AUX_ROOM_ID,
    CENSORED_STREAM_SECONDS,
];

pub static ROOM_CREATED: EventType = EventType {
    name: "room.created",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["room_session_id"]]),
    zego_events: &["room_create"],
    description: "A room came into existence.",
    fields: &[
        ROOM_ID,
        ROOM_SESSION_ID,
        field(
            "created_at_ms",
            &[at(&["room_create_time"])],
            TimeMs,
            "When the room was created.",
        ),
        field(
            "creator_user_id",
            &[at(&["id_name"])],
            Str,
            "User whose entry created the room (`id_name`).",
        ),
    ],
    occurred_at: Some("created_at_ms"),
};

pub static ROOM_CLOSED: EventType = EventType {
    name: "room.closed",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["room_session_id"]]),
    zego_events: &["room_close"],
    description: "A room was destroyed.",
    fields: &[
        ROOM_ID,
        ROOM_SESSION_ID,
        field(
            "close_reason",
            &[at(&["close_reason"])],
            Enum(ROOM_CLOSE_REASONS),
            "Why the room ended.",
        ),
        field(
            "closed_at_ms",
            &[at(&["room_close_time"])],
            TimeMs,
            "When the room was destroyed.",
        ),
    ],
    occurred_at: Some("closed_at_ms"),
};

pub static USER_LOGGED_IN: EventType = EventType {
    name: "user.logged_in",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["room_seq"], &["user_update_seq"]]),
    zego_events: &["room_login"],
    description: "A user entered a room.",
    fields: &[
        ROOM_ID,
        field("room_name", &[at(&["room_name"])], Str, "Room name."),
        ROOM_SESSION_ID,
        LOGIN_USER_ID,
        LOGIN_USER_NAME,
        SESSION_ID,
        LOGIN_AT,
        USER_ROLE,
        field(
            "auth_level",
            &[at(&["auth_level"])],
            Enum(AUTH_LEVELS),
            "How the login was authenticated: 0 no token, 1-4 token format version.",
        ),
        field(
            "relogin",
            &[at(&["relogin"])],
            Flag,
            "True when the user entered again while already in the room.",
        ),
        USER_UPDATE_SEQ,
        field(
            "callback_data",
            &[at(&["callback_data"])],
            Str,
            "Custom data attached at login.",
        ),
        field(
            "term_type",
            &[at(&["term_type"])],
            Enum(TERMINAL_TYPES),
            "Client terminal type.",
        ),
    ],
    occurred_at: Some("login_at_ms"),
};

pub static USER_LOGGED_OUT: EventType = EventType {
    name: "user.logged_out",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["room_seq"], &["user_update_seq"]]),
    zego_events: &["room_logout"],
    description: "A user left a room.",
    fields: &[
        ROOM_ID,
        ROOM_SESSION_ID,
        LOGIN_USER_ID,
        LOGIN_USER_NAME,
        SESSION_ID,
        LOGIN_AT,
        field(
            "logout_at_ms",
            &[at(&["logout_time"])],
            TimeMs,
            "When the user left.",
        ),
        field(
            "reason",
            &[at(&["reason"])],
            Enum(LOGOUT_REASONS),
            "Why the user left.",
        ),
        USER_ROLE,
        USER_UPDATE_SEQ,
    ],
    occurred_at: Some("logout_at_ms"),
};

pub static STREAM_CREATED: EventType = EventType {
    name: "stream.created",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["stream_sid"], &["stream_seq"]]),
    zego_events: &["stream_create"],
    description: "A published stream appeared on the media server.",
    fields: &[
        ROOM_ID,
        ROOM_SESSION_ID,
        STREAM_USER_ID,
        STREAM_USER_NAME,
        STREAM_ID,
        STREAM_SID,
        field("title", &[at(&["title"])], Str, "Stream title."),
        field(
            "stream_attr",
            &[at(&["stream_attr"])],
            Str,
            "JSON text such as `{\"cid\":0}` (cid = video codec), kept as sent.",
        ),
        STREAM_SEQ,
        field(
            "created_at_ms",
            &[at(&["create_time_ms"]), seconds(&["create_time"])],
            TimeMs,
            "When the stream was created (`create_time_ms`, else `create_time` × 1000).",
        ),
        field(
            "extra_info",
            &[at(&["extra_info"])],
            Str,
            "Latest stream extra info set by the publisher.",
        ),
        field(
            "recreated",
            &[at(&["recreate"])],
            Flag,
            "True when the client re-published a stream the server still held.",
        ),
        field(
            "rtmp_urls",
            &[at(&["rtmp_url"])],
            StrList,
            "RTMP playback URLs.",
        ),
        field(
            "hls_urls",
            &[at(&["hls_url"])],
            StrList,
            "HLS playback URLs.",
        ),
        field(
            "hdl_urls",
            &[at(&["hdl_url"])],
            StrList,
            "HTTP-FLV playback URLs.",
        ),
        field(
            "pic_urls",
            &[at(&["pic_url"])],
            StrList,
            "CDN snapshot URLs.",
        ),
    ],
    occurred_at: Some("created_at_ms"),
};

pub static STREAM_CLOSED: EventType = EventType {
    name: "stream.closed",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["stream_sid"], &["stream_seq"]]),
    zego_events: &["stream_close"],
    description: "A published stream ended.",
    fields: &[
        ROOM_ID,
        ROOM_SESSION_ID,
        STREAM_USER_ID,
        STREAM_USER_NAME,
        STREAM_ID,
        STREAM_SID,
        STREAM_SEQ,
        field(
            "close_reason",
            &[at(&["type"])],
            Enum(STREAM_CLOSE_REASONS),
            "Why the stream ended (`type`).",
        ),
        field(
            "stream_extra_info",
            &[at(&["third_define_data"])],
            Str,
            "Stream extra info at close time (`third_define_data`), kept as sent.",
        ),
        field(
            "created_at_ms",
            &[at(&["create_time_ms"])],
            TimeMs,
            "When the stream was created.",
        ),
        field(
            "closed_at_ms",
            &[at(&["destroy_timemillis"])],
            TimeMs,
            "When the stream was closed (`destroy_timemillis`).",
        ),
    ],
    occurred_at: Some("closed_at_ms"),
};

pub static MIX_STARTED: EventType = EventType {
    name: "mix.started",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["task_id"], &["seq"]]),
    zego_events: &["mix_start"],
    description: "A stream-mixing task started.",
    fields: &[
        MIX_ROOM_ID,
        MIX_USER_ID,
        TASK_ID_SNAKE,
        MIX_SEQ,
        MIX_URL,
        MIX_STREAM_ID,
        field(
            "stream_id",
            &[at(&["stream_alias"])],
            Str,
            "Output stream ID (`stream_alias`).",
        ),
        field(
            "rtmp_urls",
            &[at(&["rtmp_urls"])],
            StrList,
            "RTMP playback URLs of the output.",
        ),
        field(
            "hls_urls",
            &[at(&["hls_urls"])],
            StrList,
            "HLS playback URLs of the output.",
        ),
        field(
            "hdl_urls",
            &[at(&["hdl_urls"])],
            StrList,
            "HTTP-FLV playback URLs of the output.",
        ),
    ],
    occurred_at: None,
};

pub static MIX_STOPPED: EventType = EventType {
    name: "mix.stopped",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["task_id"], &["seq"]]),
    zego_events: &["mix_stop"],
    description: "A stream-mixing task ended.",
    fields: &[
        MIX_ROOM_ID,
        MIX_USER_ID,
        TASK_ID_SNAKE,
        MIX_SEQ,
        MIX_URL,
        MIX_STREAM_ID,
    ],
    occurred_at: None,
};

pub static TRANSCODE_STARTED: EventType = EventType {
    name: "transcode.started",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["transcode_start"],
    description: "A single-stream transcoding task started or was updated.",
    fields: &[
        TRANSCODE_TASK_ID,
        TRANSCODE_USER_ID,
        TRANSCODE_SEQUENCE,
        TRANSCODE_STATUS,
        field(
            "input_stream_id",
            &[at(&["Details", "Input", "StreamId"])],
            Str,
            "Source stream ID.",
        ),
        field(
            "input_stream_url",
            &[at(&["Details", "Input", "StreamUrl"])],
            Str,
            "Source stream URL.",
        ),
        field(
            "outputs",
            &[at(&["Details", "Outputs"])],
            Json,
            "`Details.Outputs`, verbatim.",
        ),
    ],
    occurred_at: None,
};

pub static TRANSCODE_STOPPED: EventType = EventType {
    name: "transcode.stopped",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["transcode_stop"],
    description: "A single-stream transcoding task stopped.",
    fields: &[
        TRANSCODE_TASK_ID,
        TRANSCODE_USER_ID,
        TRANSCODE_SEQUENCE,
        TRANSCODE_STATUS,
        field(
            "stop_reason",
            &[at(&["StopReason"])],
            Enum(TRANSCODE_STOP_REASONS),
            "0 stopped by the user, 1 stopped after a task error.",
        ),
    ],
    occurred_at: None,
};

pub static MEDIA_RECORDED: EventType = EventType {
    name: "media.recorded",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::ReceiptOne,
    identity: Identity::Delivery,
    zego_events: &["record"],
    description: "A CDN recording file was generated.",
    fields: &[
        field(
            "stream_id",
            &[at(&["stream_alias"]), at(&["stream_id"])],
            Str,
            "Recorded stream ID (`stream_alias`).",
        ),
        field(
            "replay_url",
            &[at(&["replay_url"])],
            Str,
            "Playback URL of the file.",
        ),
        field(
            "began_at_ms",
            &[seconds(&["begin_time"])],
            TimeMs,
            "Recording start (`begin_time` × 1000).",
        ),
        field(
            "ended_at_ms",
            &[seconds(&["end_time"])],
            TimeMs,
            "Recording end (`end_time` × 1000).",
        ),
        field(
            "extra_params",
            &[at(&["extra_params"])],
            Str,
            "Vendor-specific extension, kept as sent.",
        ),
    ],
    occurred_at: Some("ended_at_ms"),
};

pub static MEDIA_COMPOSED: EventType = EventType {
    name: "media.composed",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["task_id"]]),
    zego_events: &["compose"],
    description: "A media-file merge finished.",
    fields: &[
        TASK_ID_SNAKE,
        field("replay_url", &[at(&["replay_url"])], Str, "Playback URL of the merged file."),
        field("file_id", &[at(&["file_id"])], Str, "File ID (Tencent only)."),
        field(
            "result",
            &[at(&["code"])],
            Enum(COMPOSE_RESULTS),
            "Outcome (`code`): 0 success, 40000 bad input, 60000 source damaged, 70000 internal error.",
        ),
        field("message", &[at(&["message"])], Str, "Error text (Tencent only)."),
    ],
    occurred_at: None,
};

pub static MEDIA_TRANSCODED: EventType = EventType {
    name: "media.transcoded",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["procedure"],
    description: "An on-demand transcoding finished.",
    fields: &[
        TASK_ID_SNAKE,
        field("status", &[at(&["status"])], Str, "`SUCCESS` or `FAILED`."),
        field(
            "file_id",
            &[at(&["file_id"]), at(&["fileId"])],
            Str,
            "Source media file ID (`file_id`, alias `fileId`).",
        ),
        field(
            "extra_params",
            &[at(&["extra_params"])],
            Str,
            "JSON text with the per-rendition results, kept as sent.",
        ),
    ],
    occurred_at: None,
};

pub static MEDIA_SNAPSHOTTED: EventType = EventType {
    name: "media.snapshotted",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["snapshot"],
    description: "An on-demand screenshot finished.",
    fields: &[
        TASK_ID_SNAKE,
        field("vendor", &[at(&["vendor"])], Str, "`tencent` or `hw`."),
        field(
            "file_id",
            &[at(&["field_id"]), at(&["file_id"])],
            Str,
            "Source media file ID (`field_id`, sic).",
        ),
        field(
            "snapshot_pic_list",
            &[at(&["snapshot_pic_list"])],
            JsonText,
            "JSON text: list of `{url, offset}`, kept as sent. ZEGO's table types it as an array \
             and its sample sends a string holding one: an array arrives here as its JSON text.",
        ),
    ],
    occurred_at: None,
};

pub static MODERATION_AUDIO_RESULT: EventType = EventType {
    name: "moderation.audio.result",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["censor_audio_v2_result"],
    description: "Verdict for one audio segment of an audio moderation task.",
    fields: &[
        MODERATION_TASK_ID,
        RESULT_TASK_ID,
        MODERATION_CODE,
        MODERATION_MESSAGE,
        RISK_LEVEL,
        field(
            "audio_text",
            &[at(&["Detail", "AudioText"])],
            Str,
            "Recognised speech.",
        ),
        AUDIO_URL,
        PRE_AUDIO_URL,
        RISK_DESCRIPTION,
        RISK_LABEL1,
        RISK_LABEL2,
        RISK_LABEL3,
        VAD_STATUS,
        RISK_DETAIL,
        RISK_INFO_LIST,
        BUSINESS_INFO_LIST,
        AUX_ROOM_ID,
        AUX_USER_ID,
        PROCESS_BEGAN_AT,
        PROCESS_FINISHED_AT,
    ],
    occurred_at: Some("process_finished_at_ms"),
};

pub static MODERATION_AUDIO_STATUS: EventType = EventType {
    name: "moderation.audio.status",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["censor_audio_v2_status"],
    description: "An audio moderation task finished.",
    fields: MODERATION_STATUS_FIELDS,
    occurred_at: None,
};

pub static MODERATION_VIDEO_AUDIO_RESULT: EventType = EventType {
    name: "moderation.video_audio.result",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["censor_video_v2_audio_result"],
    description: "Verdict for one audio segment of a video moderation task.",
    fields: &[
        MODERATION_TASK_ID,
        RESULT_TASK_ID,
        MODERATION_CODE,
        MODERATION_MESSAGE,
        RISK_LEVEL,
        field(
            "audio_text",
            &[at(&["Detail", "Content"]), at(&["Detail", "AudioText"])],
            Str,
            "Recognised speech (`Detail.Content`).",
        ),
        AUDIO_URL,
        PRE_AUDIO_URL,
        RISK_DESCRIPTION,
        RISK_LABEL1,
        RISK_LABEL2,
        RISK_LABEL3,
        VAD_STATUS,
        RISK_DETAIL,
        RISK_INFO_LIST,
        BUSINESS_INFO_LIST,
        AUX_ROOM_ID,
        AUX_STREAM_ID,
        AUX_USER_ID,
        PROCESS_BEGAN_AT,
        PROCESS_FINISHED_AT,
    ],
    occurred_at: Some("process_finished_at_ms"),
};

pub static MODERATION_VIDEO_AUDIO_STATUS: EventType = EventType {
    name: "moderation.video_audio.status",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["censor_video_v2_audio_status"],
    description: "The audio part of a video moderation task finished.",
    fields: MODERATION_STATUS_FIELDS,
    occurred_at: None,
};

pub static MODERATION_VIDEO_IMAGE_RESULT: EventType = EventType {
    name: "moderation.video_image.result",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["censor_video_v2_img_result"],
    description: "Verdict for one captured frame of a video moderation task.",
    fields: &[
        MODERATION_TASK_ID,
        RESULT_TASK_ID,
        MODERATION_CODE,
        MODERATION_MESSAGE,
        RISK_LEVEL,
        field(
            "image_url",
            &[at(&["Detail", "ImgUrl"])],
            Str,
            "URL of the judged frame.",
        ),
        RISK_DESCRIPTION,
        RISK_LABEL1,
        RISK_LABEL2,
        RISK_LABEL3,
        RISK_DETAIL,
        RISK_INFO_LIST,
        BUSINESS_INFO_LIST,
        AUX_ROOM_ID,
        AUX_STREAM_ID,
        field(
            "image_captured_at_ms",
            &[at(&["AuxInfo", "ImgTime"])],
            BeijingTime,
            "When the frame was captured (`AuxInfo.ImgTime`, Beijing time, converted).",
        ),
    ],
    occurred_at: Some("image_captured_at_ms"),
};

pub static MODERATION_VIDEO_IMAGE_STATUS: EventType = EventType {
    name: "moderation.video_image.status",
    product: Product::Rtc,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &["censor_video_v2_img_status"],
    description: "The image part of a video moderation task finished.",
    fields: MODERATION_STATUS_FIELDS,
    occurred_at: None,
};

/// Cloud Recording's fields that both of its callbacks carry alike.
const RECORDED_ROOM_ID: Field = field("room_id", &[at(&["room_id"])], Str, "Recorded room.");
const RECORDING_MESSAGE: Field = field("message", &[at(&["message"])], Str, "Description.");

pub static CLOUD_RECORDING_STATUS: EventType = EventType {
    name: "cloud_recording.status",
    product: Product::CloudRecording,
    key: RTC_KEY,
    answer: Answer::Receipt,
    identity: Identity::body(&[&["task_id"], &["sequence"]]),
    zego_events: &[crate::zego::CLOUD_RECORDING_EVENT],
    description: "Cloud Recording status callback (no `event` key; recognised by `event_type`).",
    fields: &[
        TASK_ID_SNAKE,
        RECORDED_ROOM_ID,
        field(
            "event_type",
            &[at(&["event_type"])],
            Enum(CLOUD_RECORDING_EVENT_TYPES),
            "What happened to the recording task.",
        ),
        RECORDING_MESSAGE,
        field(
            "sequence",
            &[at(&["sequence"])],
            Int,
            "Message number of this task, from 0.",
        ),
        field(
            "upload_status",
            &[at(&["detail", "upload_status"])],
            Enum(UPLOAD_STATUSES),
            "With event type 1: whether every file was uploaded.",
        ),
        field(
            "file_info",
            &[at(&["detail", "file_info"])],
            Json,
            "With event type 1: `detail.file_info`, verbatim.",
        ),
        field(
            "quit_reason",
            &[at(&["detail", "quit_reason"])],
            Int,
            "With event type 2: why the task ended.",
        ),
        field(
            "image_type",
            &[at(&["detail", "image_type"])],
            Int,
            "With event type 3: which image failed to download.",
        ),
        field(
            "image_url",
            &[at(&["detail", "image_url"])],
            Str,
            "With event type 3: the image URL.",
        ),
        field(
            "stream_id",
            &[at(&["detail", "stream_id"])],
            Str,
            "With event types 6 and 102: the stream.",
        ),
        field(
            "file_id",
            &[at(&["detail", "file_id"])],
            Str,
            "With event type 102: the segment file ID.",
        ),
        field(
            "file_url",
            &[at(&["detail", "file_url"])],
            Str,
            "With event type 102: the M3U8 address.",
        ),
        field(
            "media_track_type",
            &[at(&["detail", "media_track_type"])],
            Enum(MEDIA_TRACK_TYPES),
            "With event type 102: 1 audio, 2 video, 3 both.",
        ),
    ],
    occurred_at: None,
};

/// The end-of-recording callback of projects that opened Cloud Recording before 2021-11-29: sent
/// once, when a task ends, with its files at the top level. Its `event_type` codes mean other
/// things than v2's, so it is a type of its own rather than `cloud_recording.status` with wrong
/// names.
pub static CLOUD_RECORDING_LEGACY_ENDED: EventType = EventType {
    name: "cloud_recording.ended_legacy",
    product: Product::CloudRecording,
    // RTC's key, as for `cloud_recording.status`: this callback names no stream.
    key: KeyRule::FirstOf(&["room_id", "task_id"]),
    answer: Answer::Receipt,
    // Sent once per task; its `sequence` comes only with video snapshots.
    identity: Identity::Delivery,
    zego_events: &[crate::zego::CLOUD_RECORDING_LEGACY_EVENT],
    description: "A recording task ended (the end-of-recording callback of projects opened before \
                  2021-11-29: `file_info` at the top, no `detail`).",
    fields: &[
        TASK_ID_SNAKE,
        RECORDED_ROOM_ID,
        field(
            "event_type",
            &[at(&["event_type"])],
            Enum(CLOUD_RECORDING_LEGACY_END_TYPES),
            "How the task ended.",
        ),
        RECORDING_MESSAGE,
        field(
            "sequence",
            &[at(&["sequence"])],
            Int,
            "Message number, from 0; only with video snapshots.",
        ),
        field(
            "file_info",
            &[at(&["file_info"])],
            Json,
            "The recorded files (`user_id`, `user_name`, `stream_id`, `file_id`, `video_id`, \
             `status` 3 once uploaded, …), verbatim; empty when nothing was published.",
        ),
    ],
    occurred_at: None,
};

/// Keys tried, in order, to find a Kafka key in an RTC callback the bridge does not know.
const UNRECOGNIZED_KEY_SOURCES: &[&[&str]] = &[
    &["room_id"],
    &["roomid"],
    &["channel_id"],
    &["task_id"],
    &["taskid"],
    &["stream_id"],
    &["streamid"],
    &["stream_alias"],
];

/// A correctly signed callback of a kind the bridge does not know.
pub static UNRECOGNIZED: EventType = EventType {
    name: "unrecognized",
    product: Product::Rtc,
    key: KeyRule::Body(UNRECOGNIZED_KEY_SOURCES),
    answer: Answer::Receipt,
    identity: Identity::Delivery,
    zego_events: &[],
    description: "A correctly signed callback of a kind the bridge does not know; every field is under `extra`.",
    fields: &[],
    occurred_at: None,
};

/// RTC's types (with Cloud Recording's), in the order the documentation lists them.
static RTC: &[&EventType] = &[
    &ROOM_CREATED,
    &ROOM_CLOSED,
    &USER_LOGGED_IN,
    &USER_LOGGED_OUT,
    &STREAM_CREATED,
    &STREAM_CLOSED,
    &MIX_STARTED,
    &MIX_STOPPED,
    &TRANSCODE_STARTED,
    &TRANSCODE_STOPPED,
    &MEDIA_RECORDED,
    &MEDIA_COMPOSED,
    &MEDIA_TRANSCODED,
    &MEDIA_SNAPSHOTTED,
    &MODERATION_AUDIO_RESULT,
    &MODERATION_AUDIO_STATUS,
    &MODERATION_VIDEO_AUDIO_RESULT,
    &MODERATION_VIDEO_AUDIO_STATUS,
    &MODERATION_VIDEO_IMAGE_RESULT,
    &MODERATION_VIDEO_IMAGE_STATUS,
    &CLOUD_RECORDING_STATUS,
    &CLOUD_RECORDING_LEGACY_ENDED,
    &UNRECOGNIZED,
];

/// Every type, product by product, in the order the documentation lists them.
pub static ALL: std::sync::LazyLock<Vec<&'static EventType>> = std::sync::LazyLock::new(|| {
    [
        RTC,
        zim::ALL,
        agents::AI_AGENT,
        agents::ASR,
        agents::DIGITAL_HUMAN,
        media::CLOUD_PLAYER,
        media::SUPER_BOARD,
    ]
    .concat()
});

/// The type for an RTC event name (matched ignoring ASCII case), or [`UNRECOGNIZED`].
pub fn for_zego_event(event: &str) -> &'static EventType {
    resolve(Product::Rtc, event).0
}

/// The type of `product`'s callback named `event` (matched ignoring surrounding space and
/// ASCII case), with the name as the catalog spells it; for a name the catalog does not know,
/// the product's `unrecognized` type and `None`.
pub fn resolve(product: Product, event: &str) -> (&'static EventType, Option<&'static str>) {
    let event = event.trim();
    ALL.iter()
        .filter(|kind| kind.product == product)
        .find_map(|kind| {
            kind.zego_events
                .iter()
                .find(|name| name.eq_ignore_ascii_case(event))
                .map(|name| (*kind, Some(*name)))
        })
        .unwrap_or((unrecognized(product), None))
}

/// Where a product's callbacks of an unknown kind go.
pub fn unrecognized(product: Product) -> &'static EventType {
    match product {
        Product::Zim => &zim::UNRECOGNIZED,
        Product::AiAgent => &agents::AI_AGENT_UNRECOGNIZED,
        Product::Asr => &agents::ASR_UNRECOGNIZED,
        Product::DigitalHuman => &agents::DIGITAL_HUMAN_UNRECOGNIZED,
        Product::CloudPlayer => &media::CLOUD_PLAYER_UNRECOGNIZED,
        Product::SuperBoard => &media::SUPER_BOARD_UNRECOGNIZED,
        Product::Rtc | Product::CloudRecording | Product::MiniGame => &UNRECOGNIZED,
    }
}

/// A type's place in [`ALL`], for tables kept per type in that order (topics, record headers).
/// Types are statics, so their addresses tell them apart: a scan of pointers, where names would
/// be compared for every event published.
pub fn index_of(kind: &EventType) -> usize {
    ALL.iter()
        .position(|known| std::ptr::eq(*known, kind))
        .or_else(|| ALL.iter().position(|known| known.name == kind.name))
        .expect("every event type is in the catalog")
}

/// The type with this normalized name.
pub fn by_name(name: &str) -> Option<&'static EventType> {
    ALL.iter().copied().find(|kind| kind.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_and_fields_well_formed() {
        let mut names = HashSet::new();
        for kind in ALL.iter() {
            assert!(names.insert(kind.name), "duplicate type {}", kind.name);
            let mut field_names = HashSet::new();
            for field in kind.fields {
                let written: Vec<String> = match field.kind {
                    Enum(_) => vec![format!("{}_code", field.name), field.name.to_owned()],
                    _ => vec![field.name.to_owned()],
                };
                for name in written {
                    assert!(
                        field_names.insert(name.clone()),
                        "{}: duplicate field {name}",
                        kind.name
                    );
                }
                if matches!(field.kind, TimeMs | BeijingTime) {
                    assert!(
                        field.name.ends_with("_at_ms"),
                        "{}.{}",
                        kind.name,
                        field.name
                    );
                }
            }
            if let Some(occurred) = kind.occurred_at {
                assert!(field_names.contains(occurred), "{}: {occurred}", kind.name);
            }
        }
        assert_eq!(
            RTC.len(),
            23,
            "RTC's types are a contract with its consumers: a new one is a new topic"
        );
    }

    #[test]
    fn every_type_of_a_product_is_named_after_it() {
        for kind in ALL.iter() {
            match kind.product {
                Product::Rtc => assert!(!kind.name.contains("cloud_recording")),
                Product::CloudRecording => assert!(kind.name.starts_with("cloud_recording.")),
                product => assert!(
                    kind.name.starts_with(&format!("{}.", product.name())),
                    "{}",
                    kind.name
                ),
            }
            if let KeyRule::FirstOf(names) = kind.key {
                for name in names {
                    assert!(
                        kind.fields.iter().any(|field| field.name == *name)
                            || kind.product == Product::Rtc,
                        "{}: key {name} is not a field",
                        kind.name
                    );
                }
            }
        }
        for product in Product::ALL {
            assert_eq!(resolve(product, "no_such_event").1, None);
        }
    }

    #[test]
    fn zego_events_map_to_types() {
        assert_eq!(for_zego_event("room_create").name, "room.created");
        assert_eq!(
            for_zego_event("Censor_Video_V2_Img_Status").name,
            "moderation.video_image.status"
        );
        assert_eq!(for_zego_event("room_user_count").name, "unrecognized");
    }
}
