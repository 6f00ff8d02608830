//! In-app Chat (ZIM): users, messages (with the synchronous pre-send check), call invitations,
//! rooms and groups.

use super::FieldKind::*;
use super::*;

const USER_ACTIONS: &[(i64, &str)] = &[(0, "online"), (1, "logout"), (2, "offline")];
const CONVERSATION_TYPES: &[(i64, &str)] =
    &[(0, "one_to_one"), (1, "room"), (2, "group"), (3, "channel")];
const MESSAGE_TYPES: &[(i64, &str)] = &[
    (1, "text"),
    (10, "multi_item"),
    (11, "image"),
    (12, "file"),
    (13, "audio"),
    (14, "video"),
    (100, "combined"),
    (200, "custom"),
];
const MESSAGE_SOURCES: &[(i64, &str)] = &[(0, "client_sdk"), (1, "server_api")];
const SEND_RESULTS: &[(i64, &str)] = &[
    (0, "sent"),
    (660000002, "bad_parameters"),
    (660500002, "sender_never_logged_in"),
    (660500004, "text_moderation_error"),
    (660500005, "text_rejected_by_moderation"),
    (660500006, "image_moderation_error"),
    (660500007, "image_rejected_by_moderation"),
    (660500009, "silenced_by_before_send"),
    (660500010, "blocked_by_before_send"),
    (660600021, "send_parameter_error"),
    (660600022, "media_redirect_failed"),
    (660600023, "message_too_long"),
];

const MSG_ID: Field = field(
    "msg_id",
    &[at(&["msg_id"])],
    Str,
    "Message ID (ZIM's own, unique); empty for a batch one-to-one send through the server API (see `user_list`).",
);
const FROM_USER_ID: Field = field("from_user_id", &[at(&["from_user_id"])], Str, "Sender.");
const CONV_TYPE: Field = field(
    "conv_type",
    &[at(&["conv_type"])],
    Enum(CONVERSATION_TYPES),
    "Conversation type.",
);
const CONV_ID: Field = field(
    "conv_id",
    &[at(&["conv_id"])],
    Str,
    "Target conversation: the peer, room or group; empty for a one-to-one send through the server API (then `user_list` names the recipients).",
);
const MSG_TYPE: Field = field(
    "msg_type",
    &[at(&["msg_type"])],
    Enum(MESSAGE_TYPES),
    "Message type.",
);
const SUB_MSG_TYPE: Field = field(
    "sub_msg_type",
    &[at(&["sub_msg_type"])],
    Int,
    "Custom sub-type (0-200), meaningful with `msg_type` 200 only.",
);
const MSG_BODY: Field = field(
    "msg_body",
    &[at(&["msg_body"])],
    Str,
    "Message content as ZIM sent it: text, custom content, or for media, multi-item and combined messages a JSON text.",
);
const MSG_SEQ: Field = field(
    "msg_seq",
    &[at(&["msg_seq"])],
    Int,
    "Message sequence number (used to revoke it).",
);
const PAYLOAD: Field = field(
    "payload",
    &[at(&["payload"])],
    Str,
    "The message's extension field.",
);
const MSG_AT: Field = field(
    "msg_at_ms",
    &[at(&["msg_time"])],
    TimeMs,
    "When ZIM's server received the message.",
);
const SEND_RESULT: Field = field(
    "send_result",
    &[at(&["send_result"])],
    Enum(SEND_RESULTS),
    "0 when the message was sent, else ZIM's error code.",
);
const USER_LIST: Field = field(
    "user_list",
    &[at(&["user_list"])],
    Json,
    "For a one-to-one send through the server API: `[{UserId, MsgId, MsgSeq}]` per recipient, verbatim.",
);
const SOURCE: Field = field(
    "source",
    &[at(&["source"])],
    Enum(MESSAGE_SOURCES),
    "Sent through the client SDK (ZIM omits the key then: null) or the server API.",
);

const CALL_ID: Field = field("call_id", &[at(&["call_id"])], Str, "Call ID.");
const CALL_USER_IDS: Field = field("user_ids", &[at(&["user_ids"])], StrList, "Callees.");
const CALL_PAYLOAD: Field = field(
    "payload",
    &[at(&["payload"])],
    Str,
    "The caller's extension data.",
);
const CALLEE: Field = field(
    "user_id",
    &[at(&["user_id"])],
    Str,
    "The callee who answered.",
);
const EXTEND_DATA: Field = field(
    "extend_data",
    &[at(&["extend_data"])],
    Str,
    "The callee's extension data.",
);

const OPERATOR: Field = field(
    "operator_account",
    &[at(&["operator_account"])],
    Str,
    "Who did it (see the type for its meaning).",
);
const CREATOR: Field = field(
    "operator_account",
    &[at(&["operator_account"])],
    Str,
    "Creator.",
);
const ZIM_ROOM_ID: Field = field("room_id", &[at(&["room_id"])], Str, "Room ID.");
const GROUP_ID: Field = field("group_id", &[at(&["group_id"])], Str, "Group ID.");
const OWNER: Field = field(
    "owner_account",
    &[at(&["owner_account"])],
    Str,
    "Group owner.",
);
const MEMBERS: Field = field(
    "user_ids",
    &[at(&["user_ids"])],
    StrList,
    "Members at that moment.",
);
const ATTRIBUTES: Field = field(
    "attributes",
    &[at(&["attributes"])],
    Json,
    "Attributes set at creation, `[{key, value, …}]`, verbatim.",
);
const EXIT_TYPE: Field = field(
    "exit_type",
    &[at(&["exit_type"])],
    Str,
    "`Quit` or `Kickout`.",
);
const EXIT_USER_IDS: Field = field(
    "exit_user_ids",
    &[at(&["exit_user_ids"])],
    StrList,
    "Users who left.",
);

const CONVERSATION_FIELDS: &[Field] = &[
    MSG_ID,
    FROM_USER_ID,
    CONV_TYPE,
    CONV_ID,
    MSG_TYPE,
    SUB_MSG_TYPE,
    SOURCE,
    MSG_BODY,
    MSG_SEQ,
    PAYLOAD,
    MSG_AT,
    SEND_RESULT,
    USER_LIST,
];

const CALL_KEY: KeyRule = KeyRule::FirstOf(&["call_id"]);
const ROOM_KEY: KeyRule = KeyRule::FirstOf(&["room_id"]);
const GROUP_KEY: KeyRule = KeyRule::FirstOf(&["group_id"]);

pub static USER_ACTION: EventType = EventType {
    identity: Identity::body(&[&["session_id"]]),
    ..of(
    Product::Zim,
    "zim.user.action",
    &["user_action"],
    "A user's ZIM connection came up (login), was closed (logout) or timed out (offline).",
    KeyRule::FirstOf(&["user_id"]),
    &[
        field("user_id", &[at(&["user_id"])], Str, "The user."),
        field("user_name", &[at(&["user_name"])], Str, "Display name."),
        field(
            "os",
            &[at(&["os"])],
            Token,
            "Platform at login: `PC`, `IOS_PHONE`, `ANDROID`, `MAC`, `LINUX`, `WEB`, `MINIPROGRAM`, `ANDROID_TV` (spaces around it removed).",
        ),
        field("action", &[at(&["action"])], Enum(USER_ACTIONS), "What happened."),
        field(
            "session_id",
            &[at(&["session_id"])],
            Str,
            "One connection; a user on several devices has several.",
        ),
        field("login_at_ms", &[seconds(&["login_time"])], TimeMs, "Login instant."),
        field("relogin", &[at(&["relogin"])], Flag, "Whether this was a re-login."),
        field("logout_at_ms", &[seconds(&["logout_time"])], TimeMs, "Logout instant."),
        field("logout_reason", &[at(&["logout_reason"])], Str, "Why, as free text."),
        field("offline_at_ms", &[seconds(&["offline_time"])], TimeMs, "When the user went offline."),
    ],
)
};

pub static MESSAGE_SENT: EventType = EventType {
    identity: Identity::body(&[&["msg_id"]]),
    occurred_at: Some("msg_at_ms"),
    ..of(
        Product::Zim,
        "zim.message.sent",
        &["send_msg"],
        "A one-to-one, room or group message was sent, or failed (`send_result`). Not for command or barrage messages.",
        KeyRule::Conversation,
        CONVERSATION_FIELDS,
    )
};

pub static MESSAGE_BEFORE_SEND: EventType = EventType {
    answer: Answer::ZimVerdict,
    identity: Identity::body(&[&["msg_id"]]),
    ..of(
        Product::Zim,
        "zim.message.before_send",
        &["before_send_msg"],
        "A message sent through the client SDK is held by ZIM until this callback is answered; the bridge answers its configured verdict at once (ZEGO_BRIDGE_ZIM_BEFORE_SEND_VERDICT) and publishes this event.",
        KeyRule::Conversation,
        &[
            field(
                "request_id",
                &[at(&["request_id"])],
                Str,
                "ZIM's ID of this check.",
            ),
            MSG_ID,
            FROM_USER_ID,
            CONV_TYPE,
            CONV_ID,
            MSG_TYPE,
            SUB_MSG_TYPE,
            MSG_BODY,
            PAYLOAD,
        ],
    )
};

pub static MESSAGE_TO_BOT: EventType = EventType {
    identity: Identity::body(&[&["msg_id"]]),
    occurred_at: Some("msg_at_ms"),
    ..of(
        Product::Zim,
        "zim.message.to_bot",
        &["bot_msg"],
        "A one-to-one message whose recipient is a registered bot (`@RBT#…`).",
        KeyRule::Conversation,
        CONVERSATION_FIELDS,
    )
};

pub static CALL_CREATED: EventType = EventType {
    identity: Identity::body(&[&["call_id"]]),
    occurred_at: Some("created_at_ms"),
    ..of(
        Product::Zim,
        "zim.call.created",
        &["call_create"],
        "A call invitation was sent (callees who are logged out are left out).",
        CALL_KEY,
        &[
            CALL_ID,
            field("caller", &[at(&["caller"])], Str, "The caller."),
            CALL_USER_IDS,
            field(
                "created_at_ms",
                &[epoch(&["create_time"])],
                TimeMs,
                "When the call was created.",
            ),
            field(
                "timeout_seconds",
                &[at(&["timeout"])],
                Int,
                "How long the callees have to answer.",
            ),
            CALL_PAYLOAD,
        ],
    )
};

pub static CALL_CANCELLED: EventType = EventType {
    // One call can see this more than once for one user: someone in it invites them again
    // ("状态为 Accepted 的用户可以调用 callingInvite 接口向不在本呼叫中的用户发起邀请"), and the
    // body holds nothing but `call_id` and the users.
    identity: Identity::Delivery,
    ..of(
        Product::Zim,
        "zim.call.cancelled",
        &["call_cancel"],
        "The caller cancelled the invitation, or left before anyone accepted.",
        CALL_KEY,
        &[
            CALL_ID,
            field(
                "user_ids",
                &[at(&["user_ids"])],
                StrList,
                "Callees, logged-out ones included.",
            ),
            field(
                "reason",
                &[at(&["reason"])],
                Str,
                "`caller_cancel` or `timeout_cancel`.",
            ),
            CALL_PAYLOAD,
        ],
    )
};

pub static CALL_ACCEPTED: EventType = EventType {
    // One call can see this more than once for one user: someone in it invites them again
    // ("状态为 Accepted 的用户可以调用 callingInvite 接口向不在本呼叫中的用户发起邀请"), and the
    // body holds nothing but `call_id` and the users.
    identity: Identity::Delivery,
    ..of(
        Product::Zim,
        "zim.call.accepted",
        &["call_accept"],
        "A callee accepted.",
        CALL_KEY,
        &[CALL_ID, CALLEE, EXTEND_DATA],
    )
};

pub static CALL_REJECTED: EventType = EventType {
    // One call can see this more than once for one user: someone in it invites them again
    // ("状态为 Accepted 的用户可以调用 callingInvite 接口向不在本呼叫中的用户发起邀请"), and the
    // body holds nothing but `call_id` and the users.
    identity: Identity::Delivery,
    ..of(
        Product::Zim,
        "zim.call.rejected",
        &["call_reject"],
        "A callee rejected.",
        CALL_KEY,
        &[CALL_ID, CALLEE, EXTEND_DATA],
    )
};

pub static CALL_TIMED_OUT: EventType = EventType {
    // One call can see this more than once for one user: someone in it invites them again
    // ("状态为 Accepted 的用户可以调用 callingInvite 接口向不在本呼叫中的用户发起邀请"), and the
    // body holds nothing but `call_id` and the users.
    identity: Identity::Delivery,
    ..of(
        Product::Zim,
        "zim.call.timed_out",
        &["call_timeout"],
        "The invitation timed out for callees who never answered.",
        CALL_KEY,
        &[
            CALL_ID,
            field(
                "user_ids",
                &[at(&["user_ids"])],
                StrList,
                "Callees who never answered.",
            ),
        ],
    )
};

pub static CALL_INVITED: EventType = EventType {
    identity: Identity::body(&[&["call_id"], &["invite_time"]]),
    occurred_at: Some("invited_at_ms"),
    ..of(
        Product::Zim,
        "zim.call.invited",
        &["call_invite"],
        "Someone already in a call invited more users.",
        CALL_KEY,
        &[
            CALL_ID,
            field(
                "user_ids",
                &[at(&["user_ids"])],
                StrList,
                "Users invited (the English and Chinese pages differ on whom it leaves out).",
            ),
            field("inviter", &[at(&["inviter"])], Str, "Who invited them."),
            field(
                "invited_at_ms",
                &[epoch(&["invite_time"])],
                TimeMs,
                "When they were invited.",
            ),
        ],
    )
};

pub static ROOM_CREATED: EventType = of(
    Product::Zim,
    "zim.room.created",
    &["room_create"],
    "A ZIM room was created (not an RTC room: those are `room.created`).",
    ROOM_KEY,
    &[
        ZIM_ROOM_ID,
        field("room_name", &[at(&["room_name"])], Str, "Room name."),
        CREATOR,
        ATTRIBUTES,
    ],
);

pub static ROOM_DESTROYED: EventType = of(
    Product::Zim,
    "zim.room.destroyed",
    &["room_destroy"],
    "A ZIM room was destroyed, or its last user left.",
    ROOM_KEY,
    &[ZIM_ROOM_ID, MEMBERS, OPERATOR],
);

pub static ROOM_ENTERED: EventType = of(
    Product::Zim,
    "zim.room.entered",
    &["room_enter"],
    "A user entered a ZIM room.",
    ROOM_KEY,
    &[
        ZIM_ROOM_ID,
        field(
            "operator_account",
            &[at(&["operator_account"])],
            Str,
            "Who entered.",
        ),
        field(
            "new_user_ids",
            &[at(&["new_user_ids"])],
            StrList,
            "Users who entered (listed by the pages until 2025-09).",
        ),
    ],
);

pub static ROOM_EXITED: EventType = of(
    Product::Zim,
    "zim.room.exited",
    &["room_exit"],
    "Users left a ZIM room, or were kicked out.",
    ROOM_KEY,
    &[
        ZIM_ROOM_ID,
        EXIT_TYPE,
        field(
            "operator_account",
            &[at(&["operator_account"])],
            Str,
            "With `Kickout`, who kicked; with `Quit`, the leaver or nothing meaningful (the pages differ).",
        ),
        EXIT_USER_IDS,
    ],
);

pub static GROUP_CREATED: EventType = of(
    Product::Zim,
    "zim.group.created",
    &["group_create"],
    "A group was created.",
    GROUP_KEY,
    &[
        GROUP_ID,
        field("group_name", &[at(&["group_name"])], Str, "Group name."),
        CREATOR,
        OWNER,
        MEMBERS,
        ATTRIBUTES,
    ],
);

pub static GROUP_DESTROYED: EventType = of(
    Product::Zim,
    "zim.group.destroyed",
    &["group_destroy"],
    "A group was dissolved.",
    GROUP_KEY,
    &[GROUP_ID, OPERATOR, OWNER, MEMBERS],
);

pub static GROUP_JOINED: EventType = of(
    Product::Zim,
    "zim.group.joined",
    &["group_join", "Apply_join_group", "invited_join_group"],
    "Users joined a group, by applying or by invitation (the English page names the callback `Apply_join_group`, a 2025 draft also `invited_join_group`).",
    GROUP_KEY,
    &[
        GROUP_ID,
        field(
            "join_type",
            &[at(&["join_type"])],
            Str,
            "`Apply` or `Invited`.",
        ),
        field(
            "operator_account",
            &[at(&["operator_account"])],
            Str,
            "With `Invited`, the inviter.",
        ),
        field(
            "new_user_ids",
            &[at(&["new_user_ids"])],
            StrList,
            "Users who joined.",
        ),
    ],
);

pub static GROUP_EXITED: EventType = of(
    Product::Zim,
    "zim.group.exited",
    &["group_exit"],
    "Users left a group, or were kicked out.",
    GROUP_KEY,
    &[
        GROUP_ID,
        EXIT_TYPE,
        field(
            "operator_account",
            &[at(&["operator_account"])],
            Str,
            "With `Kickout`, who kicked.",
        ),
        EXIT_USER_IDS,
    ],
);

pub static UNRECOGNIZED: EventType = of(
    Product::Zim,
    "zim.unrecognized",
    &[],
    "A correctly signed ZIM callback of a kind the bridge does not know; every field is under `extra`.",
    KeyRule::Body(&[
        &["call_id"],
        &["group_id"],
        &["room_id"],
        &["conv_id"],
        &["user_id"],
        &["from_user_id"],
    ]),
    &[],
);

pub static ALL: &[&EventType] = &[
    &USER_ACTION,
    &MESSAGE_SENT,
    &MESSAGE_BEFORE_SEND,
    &MESSAGE_TO_BOT,
    &CALL_CREATED,
    &CALL_CANCELLED,
    &CALL_ACCEPTED,
    &CALL_REJECTED,
    &CALL_TIMED_OUT,
    &CALL_INVITED,
    &ROOM_CREATED,
    &ROOM_DESTROYED,
    &ROOM_ENTERED,
    &ROOM_EXITED,
    &GROUP_CREATED,
    &GROUP_DESTROYED,
    &GROUP_JOINED,
    &GROUP_EXITED,
    &UNRECOGNIZED,
];
