//! AI Agent, Cloud real-time ASR and Digital Human: PascalCase keys, times in milliseconds.

use super::FieldKind::*;
use super::*;

const INTERRUPT_REASONS: &[(i64, &str)] = &[
    (1, "user_spoke"),
    (2, "send_agent_instance_llm"),
    (3, "send_agent_instance_tts"),
    (4, "interrupt_agent_instance"),
];
const DELETION_CODES: &[(i64, &str)] = &[
    (0, "deleted_by_api"),
    (1201, "rtc_error"),
    (1202, "user_absent"),
    (1203, "kicked_out"),
    (1204, "room_login_failed"),
    (1205, "disconnected"),
    (1206, "publish_failed"),
];
const ASR_EXCEPTIONS: &[(i64, &str)] = &[
    (1001, "general"),
    (1004, "speech_without_text"),
    (1201, "rtc_error"),
    (1202, "room_without_users"),
    (1204, "room_login_failed"),
    (1207, "stream_pull_failed"),
    (2101, "recognition_error"),
];
const STREAM_TASK_STATUSES: &[(i64, &str)] = &[
    (1, "initialising"),
    (2, "initialisation_failed"),
    (3, "streaming"),
    (4, "stopping"),
    (5, "stopped"),
];
const DRIVE_TASK_STATUSES: &[(i64, &str)] = &[
    (1, "queued"),
    (2, "driving"),
    (3, "failed"),
    (4, "finished"),
];

const AGENT_INSTANCE_ID: Field = field(
    "agent_instance_id",
    &[at(&["AgentInstanceId"])],
    Str,
    "The agent instance (a 19-digit decimal string).",
);
const AGENT_USER_ID: Field = field(
    "agent_user_id",
    &[at(&["AgentUserId"])],
    Str,
    "The agent's RTC user ID.",
);
const AGENT_ID: Field = field(
    "agent_id",
    &[at(&["AgentId"])],
    Str,
    "The registered agent.",
);
const AGENT_NAME: Field = field("agent_name", &[at(&["Name"])], Str, "The agent's name.");
const AGENT_ROOM_ID: Field = field("room_id", &[at(&["RoomId"])], Str, "RTC room.");
const SEQUENCE: Field = field(
    "sequence",
    &[at(&["Sequence"])],
    Int,
    "Order of the instance's callbacks: increasing, with gaps.",
);
const ROUND: Field = field(
    "round",
    &[at(&["Data", "Round"])],
    Int,
    "The interaction (one user turn or API call) it belongs to: increasing, with gaps.",
);
const DATA_USER_ID: Field = field(
    "user_id",
    &[at(&["Data", "UserId"])],
    Str,
    "The speaking user.",
);
const DATA_TEXT: Field = field("text", &[at(&["Data", "Text"])], Str, "The text.");
const AGENT_KEY: KeyRule = KeyRule::FirstOf(&["agent_instance_id"]);
/// "The sequence number of the callback, ensuring orderliness but not necessarily continuity":
/// each callback of an instance has its own. The English samples leave it out, and then only
/// `Timestamp` and `Nonce` tell two `Exception`s of one instance apart.
const AGENT_IDENTITY: Identity = Identity::body(&[&["AgentInstanceId"], &["Sequence"]]);

/// Declares an AI Agent type: the instance's fields first, then the event's own.
macro_rules! agent_type {
    ($name:literal, [$($event:literal),+], $description:literal, [$($own:expr),* $(,)?]) => {
        EventType {
            identity: AGENT_IDENTITY,
            ..of(
                Product::AiAgent,
                $name,
                &[$($event),+],
                $description,
                AGENT_KEY,
                &[AGENT_INSTANCE_ID, AGENT_USER_ID, AGENT_ID, AGENT_NAME, AGENT_ROOM_ID, SEQUENCE, $($own),*],
            )
        }
    };
}

pub static AGENT_ASR_RESULT: EventType = agent_type!(
    "ai_agent.asr.result",
    ["ASRResult"],
    "What the agent heard a user say in one turn.",
    [DATA_USER_ID, ROUND, DATA_TEXT]
);

pub static AGENT_LLM_RESULT: EventType = agent_type!(
    "ai_agent.llm.result",
    ["LLMResult"],
    "One sentence of the language model's answer.",
    [ROUND, DATA_TEXT]
);

pub static AGENT_EXCEPTION: EventType = agent_type!(
    "ai_agent.exception",
    ["Exception"],
    "Something failed in the agent's pipeline.",
    [
        field(
            "code",
            &[at(&["Data", "Code"])],
            Int,
            "1001 general, 1004 speech without text, 1101 IM, 1201-1208 RTC, 2101 ASR, 2201-2206 LLM, 2301-2305 TTS.",
        ),
        field("message", &[at(&["Data", "Message"])], Str, "Description."),
        ROUND,
    ]
);

pub static AGENT_INTERRUPTED: EventType = agent_type!(
    "ai_agent.interrupted",
    ["Interrupted"],
    "The agent was cut off while speaking.",
    [
        ROUND,
        field(
            "reason",
            &[at(&["Data", "Reason"])],
            Enum(INTERRUPT_REASONS),
            "What interrupted it.",
        ),
        field(
            "played_text",
            &[at(&["Data", "PlayedText"])],
            Str,
            "What it had said by then.",
        ),
    ]
);

pub static AGENT_USER_SPEAK_ACTION: EventType = agent_type!(
    "ai_agent.user.speak_action",
    ["UserSpeakAction"],
    "A user started or stopped speaking.",
    [
        DATA_USER_ID,
        field(
            "action",
            &[at(&["Data", "Action"])],
            Str,
            "`SPEAK_BEGIN` or `SPEAK_END`.",
        ),
        ROUND,
    ]
);

pub static AGENT_INSTANCE_STATUS: EventType = agent_type!(
    "ai_agent.instance.status",
    ["AgentInstanceStatus", "AgentSpeakAction"],
    "The agent's state changed (`AgentSpeakAction` is the deprecated name, still in the vendor's samples, once with `Action` instead of `Status`).",
    [
        field(
            "status",
            &[at(&["Data", "Status"])],
            Str,
            "`IDLE`, `LISTENING`, `THINKING` or `SPEAKING`.",
        ),
        field(
            "action",
            &[at(&["Data", "Action"])],
            Str,
            "`SPEAK_BEGIN` or `SPEAK_END` (the older shape of `AgentSpeakAction`).",
        ),
        ROUND,
    ]
);

pub static AGENT_USER_AUDIO: EventType = agent_type!(
    "ai_agent.user.audio",
    ["UserAudioData"],
    "The first second or so of a user's turn, as audio.",
    [
        DATA_USER_ID,
        ROUND,
        field(
            "sample_rate",
            &[at(&["Data", "SampleRate"])],
            Int,
            "Samples per second.",
        ),
        field("format", &[at(&["Data", "Format"])], Str, "`pcm`."),
        field(
            "audio",
            &[at(&["Data", "Audio"])],
            Str,
            "The audio, base64."
        ),
    ]
);

pub static AGENT_INSTANCE_CREATED: EventType = EventType {
    occurred_at: Some("created_at_ms"),
    ..agent_type!(
        "ai_agent.instance.created",
        ["AgentInstanceCreated"],
        "An agent instance was created.",
        [field(
            "created_at_ms",
            &[epoch(&["Data", "CreatedTimestamp"])],
            TimeMs,
            "When.",
        )]
    )
};

pub static AGENT_INSTANCE_DELETED: EventType = EventType {
    occurred_at: Some("deleted_at_ms"),
    ..agent_type!(
        "ai_agent.instance.deleted",
        ["AgentInstanceDeleted"],
        "An agent instance ended.",
        [
            field(
                "code",
                &[at(&["Data", "Code"])],
                Enum(DELETION_CODES),
                "Why it ended.",
            ),
            field(
                "deleted_at_ms",
                &[epoch(&["Data", "DeletedTimestamp"])],
                TimeMs,
                "When.",
            ),
            field(
                "latency",
                &[at(&["Data", "LatencyData"])],
                Json,
                "Session averages `{LLMTTFT, LLMTPS, TTSAudioFirstFrameTime, TotalCost}`, verbatim.",
            ),
        ]
    )
};

pub static AGENT_INSTANCE_META_INFO: EventType = agent_type!(
    "ai_agent.instance.meta_info",
    ["AgentInstanceMetaInfo"],
    "Metadata attached to what the agent says (voice, emotion, action).",
    [
        ROUND,
        field(
            "meta_info",
            &[at(&["Data", "MetaInfo"])],
            Json,
            "The metadata, verbatim.",
        ),
    ]
);

pub static AI_AGENT_UNRECOGNIZED: EventType = of(
    Product::AiAgent,
    "ai_agent.unrecognized",
    &[],
    "A correctly signed AI Agent callback of a kind the bridge does not know; every field is under `extra`.",
    KeyRule::Body(&[&["AgentInstanceId"], &["RoomId"]]),
    &[],
);

pub static AI_AGENT: &[&EventType] = &[
    &AGENT_ASR_RESULT,
    &AGENT_LLM_RESULT,
    &AGENT_EXCEPTION,
    &AGENT_INTERRUPTED,
    &AGENT_USER_SPEAK_ACTION,
    &AGENT_INSTANCE_STATUS,
    &AGENT_USER_AUDIO,
    &AGENT_INSTANCE_CREATED,
    &AGENT_INSTANCE_DELETED,
    &AGENT_INSTANCE_META_INFO,
    &AI_AGENT_UNRECOGNIZED,
];

const ASR_TASK_ID: Field = field(
    "task_id",
    &[at(&["TaskId"])],
    Str,
    "The recognition task (globally unique).",
);
const ASR_KEY: KeyRule = KeyRule::FirstOf(&["task_id", "room_id"]);
const ASR_RESULT_FIELDS: &[Field] = &[
    ASR_TASK_ID,
    AGENT_ROOM_ID,
    DATA_USER_ID,
    field(
        "stream_id",
        &[at(&["Data", "StreamId"])],
        Str,
        "The recognised stream.",
    ),
    ROUND,
    DATA_TEXT,
];

pub static ASR_RESULT: EventType = of(
    Product::Asr,
    "asr.result",
    &["ASRResult"],
    "The final text of one turn of a user's speech.",
    ASR_KEY,
    ASR_RESULT_FIELDS,
);

pub static ASR_TRANSLATION: EventType = of(
    Product::Asr,
    "asr.translation",
    &["TranslationResult"],
    "The translation of one turn (with translation enabled on the task).",
    ASR_KEY,
    ASR_RESULT_FIELDS,
);

pub static ASR_EXCEPTION: EventType = of(
    Product::Asr,
    "asr.exception",
    &["Exception"],
    "Something failed in the recognition task (1202: the task stopped).",
    ASR_KEY,
    &[
        ASR_TASK_ID,
        AGENT_ROOM_ID,
        field(
            "code",
            &[at(&["Data", "Code"])],
            Enum(ASR_EXCEPTIONS),
            "What failed.",
        ),
        field("message", &[at(&["Data", "Message"])], Str, "Description."),
    ],
);

pub static ASR_UNRECOGNIZED: EventType = of(
    Product::Asr,
    "asr.unrecognized",
    &[],
    "A correctly signed ASR callback of a kind the bridge does not know; every field is under `extra`.",
    KeyRule::Body(&[&["TaskId"], &["RoomId"]]),
    &[],
);

pub static ASR: &[&EventType] = &[
    &ASR_RESULT,
    &ASR_TRANSLATION,
    &ASR_EXCEPTION,
    &ASR_UNRECOGNIZED,
];

const DIGITAL_HUMAN_TASK_ID: Field =
    field("task_id", &[at(&["TaskId"])], Str, "The video stream task.");
const DIGITAL_HUMAN_EVENT_AT: Field = field(
    "event_at_ms",
    &[epoch(&["EventTime"])],
    TimeMs,
    "When it happened on ZEGO's server.",
);

pub static STREAM_TASK_STATUS: EventType = EventType {
    identity: Identity::body(&[&["TaskId"], &["EventTime"]]),
    occurred_at: Some("event_at_ms"),
    ..of(
        Product::DigitalHuman,
        "digital_human.stream_task.status",
        &["3"],
        "A digital human's video stream task changed state (`EventType` 3).",
        KeyRule::FirstOf(&["task_id"]),
        &[
            DIGITAL_HUMAN_TASK_ID,
            DIGITAL_HUMAN_EVENT_AT,
            field(
                "status",
                &[at(&["Detail", "Status"])],
                Enum(STREAM_TASK_STATUSES),
                "The task's state.",
            ),
            field("room_id", &[at(&["Detail", "RoomId"])], Str, "RTC room."),
            field("stream_id", &[at(&["Detail", "StreamId"])], Str, "Stream."),
            field(
                "fail_reason",
                &[at(&["Detail", "FailReason"])],
                Str,
                "Why initialisation failed (status 2).",
            ),
        ],
    )
};

pub static DRIVE_TASK_STATUS: EventType = EventType {
    identity: Identity::body(&[&["TaskId"], &["EventTime"]]),
    occurred_at: Some("event_at_ms"),
    ..of(
        Product::DigitalHuman,
        "digital_human.drive_task.status",
        &["4"],
        "A drive task (what the digital human says) changed state: `driving` is the start of speech, `finished` its end (`EventType` 4).",
        KeyRule::FirstOf(&["task_id"]),
        &[
            DIGITAL_HUMAN_TASK_ID,
            DIGITAL_HUMAN_EVENT_AT,
            field("drive_id", &[at(&["Detail", "DriveId"])], Str, "The drive task."),
            field(
                "status",
                &[at(&["Detail", "Status"])],
                Enum(DRIVE_TASK_STATUSES),
                "The drive task's state.",
            ),
        ],
    )
};

pub static DIGITAL_HUMAN_UNRECOGNIZED: EventType = of(
    Product::DigitalHuman,
    "digital_human.unrecognized",
    &[],
    "A correctly signed Digital Human callback of a kind the bridge does not know (the retired `EventType` 1 and 2 among them); every field is under `extra`.",
    KeyRule::Body(&[&["TaskId"]]),
    &[],
);

pub static DIGITAL_HUMAN: &[&EventType] = &[
    &STREAM_TASK_STATUS,
    &DRIVE_TASK_STATUS,
    &DIGITAL_HUMAN_UNRECOGNIZED,
];
