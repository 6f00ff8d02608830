//! Cloud Player (numbered events, `AppID` with a capital D) and Super Board (document
//! conversion).

use super::FieldKind::*;
use super::*;

const DESTROY_REASONS: &[(i64, &str)] = &[
    (1, "deleted"),
    (2, "idle_timeout"),
    (3, "playback_ended"),
    (4, "publish_failed"),
    (5, "room_failure"),
];
const PLAYER_STATUSES: &[(i64, &str)] = &[
    (1, "creating"),
    (2, "connecting_source"),
    (3, "waiting"),
    (4, "playing"),
    (5, "paused"),
    (6, "source_failed"),
    (7, "ended"),
    (8, "destroyed"),
];
const UPLOAD_FAILURES: &[(i64, &str)] = &[
    (1, "source_download_failed"),
    (2, "upload_error"),
    (3, "file_too_large"),
];
const UPLOAD_STATUSES: &[(i64, &str)] = &[(1, "pending"), (2, "uploading"), (3, "cancelled")];
const CANCEL_FAILURES: &[(i64, &str)] = &[(1, "uploading"), (2, "already_uploaded")];
const UPLOAD_EXCEPTIONS: &[(i64, &str)] = &[(1, "unknown"), (2, "upload_error")];
const CONVERSION_STATUSES: &[(i64, &str)] = &[
    (16, "done"),
    (32, "failed"),
    (64, "cancelled"),
    (128, "password_protected"),
    (256, "too_large"),
    (512, "too_many_sheets"),
    (1024, "empty_document"),
    (2048, "cannot_open"),
    (4096, "unsupported_target"),
    (8192, "read_only_source"),
    (16384, "source_download_failed"),
    (32768, "unsupported_content"),
    (32769, "invalid_office_file"),
];

const PLAYER_ID: Field = field("player_id", &[at(&["PlayerId"])], Str, "The player.");
const PLAYER_ROOM_ID: Field = field(
    "room_id",
    &[at(&["RoomId"])],
    Str,
    "The room it plays into.",
);
const PLAYER_NAME: Field = field(
    "player_name",
    &[at(&["PlayerName"])],
    Str,
    "The player's name (in the vendor's samples, not its tables).",
);
const EVENT_AT: Field = field(
    "event_at_ms",
    &[epoch(&["EventTime"])],
    TimeMs,
    "When it happened on ZEGO's server.",
);
const PLAY_INDEX: Field = field(
    "play_index",
    &[at(&["Detail", "PlayIndex"])],
    Int,
    "Which item of the stream list.",
);
const UPLOAD_TASK_ID: Field = field(
    "upload_task_id",
    &[at(&["UploadTaskId"])],
    Str,
    "The upload task.",
);
const PLAYER_KEY: KeyRule = KeyRule::FirstOf(&["player_id"]);
const UPLOAD_KEY: KeyRule = KeyRule::FirstOf(&["upload_task_id"]);

/// "PlayTime | Number | 云端播放器开始播放媒体流的 Unix 时间戳(秒)" (*the Unix second the player
/// started playing*, doc-zh.zego.im article 17867): an instant, not a duration. Kept as sent for
/// the consumers who read it, and given in milliseconds as every other instant is.
const PLAY_TIME: Field = field(
    "play_time",
    &[at(&["Detail", "PlayTime"])],
    Int,
    "`Detail.PlayTime` as sent: the Unix second playback started (an instant, not a duration); `played_at_ms` is the same in milliseconds.",
);
const PLAYED_AT: Field = Field {
    added_later: true,
    ..field(
        "played_at_ms",
        &[seconds(&["Detail", "PlayTime"])],
        TimeMs,
        "When the player started playing (`Detail.PlayTime`, Unix seconds, in milliseconds).",
    )
};

/// A Cloud Player type (its `EventType` number as its ZEGO name), occurring at `EventTime`.
const fn cloud_player(
    name: &'static str,
    number: &'static [&'static str],
    description: &'static str,
    key: KeyRule,
    fields: &'static [Field],
) -> EventType {
    EventType {
        occurred_at: Some("event_at_ms"),
        ..of(Product::CloudPlayer, name, number, description, key, fields)
    }
}

pub static PLAYER_CREATED: EventType = cloud_player(
    "cloud_player.player.created",
    &["1"],
    "A cloud player was created (`EventType` 1).",
    PLAYER_KEY,
    &[
        PLAYER_ID,
        PLAYER_ROOM_ID,
        PLAYER_NAME,
        EVENT_AT,
        field(
            "created_at_ms",
            &[seconds(&["Detail", "CreateTime"])],
            TimeMs,
            "When the player was created.",
        ),
        PLAY_TIME,
        PLAYED_AT,
        field(
            "max_idle_seconds",
            &[at(&["Detail", "MaxIdleTime"])],
            Int,
            "Idle time after which the player is destroyed.",
        ),
        field(
            "stream_url",
            &[at(&["Detail", "StreamUrl"]), at(&["StreamUrl"])],
            Str,
            "The source played.",
        ),
    ],
);

pub static PLAYER_DESTROYED: EventType = cloud_player(
    "cloud_player.player.destroyed",
    &["2"],
    "A cloud player was destroyed (`EventType` 2).",
    PLAYER_KEY,
    &[
        PLAYER_ID,
        PLAYER_ROOM_ID,
        PLAYER_NAME,
        EVENT_AT,
        PLAY_TIME,
        PLAYED_AT,
        field(
            "reason",
            &[at(&["Detail", "Reason"])],
            Enum(DESTROY_REASONS),
            "Why.",
        ),
    ],
);

pub static PLAYER_STATUS_CHANGED: EventType = cloud_player(
    "cloud_player.player.status_changed",
    &["3"],
    "A cloud player changed state (`EventType` 3).",
    PLAYER_KEY,
    &[
        PLAYER_ID,
        PLAYER_ROOM_ID,
        PLAYER_NAME,
        EVENT_AT,
        field(
            "status",
            &[at(&["Detail", "Status"])],
            Enum(PLAYER_STATUSES),
            "The new state.",
        ),
        PLAY_INDEX,
    ],
);

pub static PLAYER_EXCEPTION: EventType = cloud_player(
    "cloud_player.player.exception",
    &["4"],
    "A cloud player hit a problem (`EventType` 4).",
    PLAYER_KEY,
    &[
        PLAYER_ID,
        PLAYER_ROOM_ID,
        PLAYER_NAME,
        EVENT_AT,
        field(
            "code",
            &[at(&["Detail", "Code"])],
            Int,
            "-1 load timeout, -2 seek timeout, -3 seek failed, -4 audio render frame rate, -5 decode data error, -6 audio and video out of sync, -7 stutter, 1 progress anomaly, 2 and 3 video push frame rate, 4 audio push frame rate, 5 flow control over 5 min, 6 decode error, 7 one stream list item failed to load.",
        ),
        PLAY_INDEX,
    ],
);

pub static UPLOAD_UPLOADED: EventType = cloud_player(
    "cloud_player.upload.uploaded",
    &["10001"],
    "An upload task's file was uploaded (`EventType` 10001).",
    UPLOAD_KEY,
    &[UPLOAD_TASK_ID, EVENT_AT],
);

pub static UPLOAD_FAILED: EventType = cloud_player(
    "cloud_player.upload.failed",
    &["10002"],
    "An upload task failed (`EventType` 10002).",
    UPLOAD_KEY,
    &[
        UPLOAD_TASK_ID,
        EVENT_AT,
        field(
            "reason",
            &[at(&["Detail", "Reason"])],
            Enum(UPLOAD_FAILURES),
            "Why.",
        ),
    ],
);

pub static UPLOAD_STATUS_CHANGED: EventType = cloud_player(
    "cloud_player.upload.status_changed",
    &["10003"],
    "An upload task changed state (`EventType` 10003).",
    UPLOAD_KEY,
    &[
        UPLOAD_TASK_ID,
        EVENT_AT,
        field(
            "status",
            &[at(&["Detail", "Status"])],
            Enum(UPLOAD_STATUSES),
            "The new state.",
        ),
    ],
);

pub static UPLOAD_CANCEL_FAILED: EventType = cloud_player(
    "cloud_player.upload.cancel_failed",
    &["10004"],
    "Cancelling an upload task failed (`EventType` 10004).",
    UPLOAD_KEY,
    &[
        UPLOAD_TASK_ID,
        EVENT_AT,
        field(
            "reason",
            &[at(&["Detail", "Reason"])],
            Enum(CANCEL_FAILURES),
            "Why.",
        ),
    ],
);

pub static UPLOAD_EXCEPTION: EventType = cloud_player(
    "cloud_player.upload.exception",
    &["10005"],
    "An upload hit a problem; ZEGO retries it (`EventType` 10005).",
    UPLOAD_KEY,
    &[
        UPLOAD_TASK_ID,
        EVENT_AT,
        field(
            "code",
            &[at(&["Detail", "Code"])],
            Enum(UPLOAD_EXCEPTIONS),
            "What went wrong.",
        ),
    ],
);

pub static UPLOAD_EXPIRED: EventType = cloud_player(
    "cloud_player.upload.expired",
    &["10006"],
    "An uploaded file expired (`EventType` 10006).",
    UPLOAD_KEY,
    &[UPLOAD_TASK_ID, EVENT_AT],
);

pub static CLOUD_PLAYER_UNRECOGNIZED: EventType = of(
    Product::CloudPlayer,
    "cloud_player.unrecognized",
    &[],
    "A correctly signed Cloud Player callback of a kind the bridge does not know; every field is under `extra`.",
    KeyRule::Body(&[&["PlayerId"], &["UploadTaskId"], &["RoomId"]]),
    &[],
);

pub static CLOUD_PLAYER: &[&EventType] = &[
    &PLAYER_CREATED,
    &PLAYER_DESTROYED,
    &PLAYER_STATUS_CHANGED,
    &PLAYER_EXCEPTION,
    &UPLOAD_UPLOADED,
    &UPLOAD_FAILED,
    &UPLOAD_STATUS_CHANGED,
    &UPLOAD_CANCEL_FAILED,
    &UPLOAD_EXCEPTION,
    &UPLOAD_EXPIRED,
    &CLOUD_PLAYER_UNRECOGNIZED,
];

pub static CONVERSION_FINISHED: EventType = of(
    Product::SuperBoard,
    "super_board.conversion.finished",
    &["cvt_finish"],
    "A document conversion ended, well or not.",
    KeyRule::FirstOf(&["task_id"]),
    &[
        field(
            "task_id",
            &[at(&["data", "task_id"])],
            Str,
            "Conversion task.",
        ),
        field(
            "file_id",
            &[at(&["data", "file_id"])],
            Str,
            "The converted file.",
        ),
        field(
            "status",
            &[at(&["data", "status"])],
            Enum(CONVERSION_STATUSES),
            "How it ended.",
        ),
    ],
);

pub static SUPER_BOARD_UNRECOGNIZED: EventType = of(
    Product::SuperBoard,
    "super_board.unrecognized",
    &[],
    "A correctly signed Super Board callback of a kind the bridge does not know; every field is under `extra`.",
    KeyRule::Body(&[&["data", "task_id"], &["task_id"]]),
    &[],
);

pub static SUPER_BOARD: &[&EventType] = &[&CONVERSION_FINISHED, &SUPER_BOARD_UNRECOGNIZED];
