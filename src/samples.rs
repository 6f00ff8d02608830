//! ZEGO's own sample callbacks, bundled so `zego-kafka-bridge send` works without files.
//!
//! `samples/` holds the vendor documentation's samples as printed (see its README), RTC's at
//! the top and the other products' under `samples/products/`; the `.verbatim.txt` files are the
//! ones that are not valid JSON as printed.

use crate::zego::Product;

/// How a sample body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleEncoding {
    Json,
    Form,
    /// Printed in the docs but not valid JSON: a receiver must refuse it with 400.
    Broken,
    /// Not a callback: the content of another sample's field (`procedure`'s `extra_params`),
    /// or the body a receiver answers with (`….response.json`).
    Fragment,
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The file's path under `samples/`.
    pub file: &'static str,
    pub product: Product,
    pub encoding: SampleEncoding,
    pub body: &'static str,
}

macro_rules! sample {
    ($file:literal, $encoding:ident) => {
        Sample {
            file: $file,
            product: Product::Rtc,
            encoding: SampleEncoding::$encoding,
            body: include_str!(concat!("../samples/", $file)),
        }
    };
}

macro_rules! product_sample {
    ($file:literal, $product:ident, $encoding:ident) => {
        Sample {
            file: concat!("products/", $file),
            product: Product::$product,
            encoding: SampleEncoding::$encoding,
            body: include_str!(concat!("../samples/products/", $file)),
        }
    };
}

pub const ALL: &[Sample] = &[
    sample!("censor_audio_v2_result.json", Json),
    sample!("censor_audio_v2_result.verbatim.txt", Broken),
    sample!("censor_audio_v2_status.json", Json),
    sample!("censor_audio_v2_status.verbatim.txt", Broken),
    sample!("censor_video_v2_audio_result.json", Json),
    sample!("censor_video_v2_audio_result.verbatim.txt", Broken),
    sample!("censor_video_v2_audio_status.json", Json),
    sample!("censor_video_v2_audio_status.verbatim.txt", Broken),
    sample!("censor_video_v2_img_result.json", Json),
    sample!("censor_video_v2_img_result.verbatim.txt", Broken),
    sample!("censor_video_v2_img_status.json", Json),
    sample!("censor_video_v2_img_status.verbatim.txt", Broken),
    sample!("cloud_recording_status.json", Json),
    sample!("compose.json", Json),
    sample!("mix_start.json", Json),
    sample!("mix_stop.json", Json),
    sample!("procedure.extra_params.json", Fragment),
    sample!("procedure.extra_params.verbatim.txt", Fragment),
    sample!("procedure.json", Json),
    sample!("procedure.verbatim.txt", Broken),
    sample!("record.form.txt", Form),
    sample!("record.json", Json),
    sample!("room_close.form.txt", Form),
    sample!("room_close.json", Json),
    sample!("room_create.json", Json),
    sample!("room_login.form.txt", Form),
    sample!("room_login.json", Json),
    sample!("room_login.v2.json", Json),
    sample!("room_logout.form.txt", Form),
    sample!("room_logout.json", Json),
    sample!("room_logout.v2.json", Json),
    sample!("snapshot.json", Json),
    sample!("snapshot.verbatim.txt", Broken),
    sample!("stream_close.json", Json),
    sample!("stream_create.json", Json),
    sample!("transcode_start.json", Json),
    sample!("transcode_stop.json", Json),
    product_sample!("ai_agent.ASRResult.json", AiAgent, Json),
    product_sample!("ai_agent.AgentInstanceCreated.json", AiAgent, Json),
    product_sample!("ai_agent.AgentInstanceDeleted.json", AiAgent, Json),
    product_sample!("ai_agent.AgentInstanceMetaInfo.json", AiAgent, Json),
    product_sample!("ai_agent.AgentInstanceStatus.json", AiAgent, Json),
    product_sample!("ai_agent.AgentSpeakAction.json", AiAgent, Json),
    product_sample!("ai_agent.Exception.json", AiAgent, Json),
    product_sample!("ai_agent.Interrupted.json", AiAgent, Json),
    product_sample!("ai_agent.LLMResult.json", AiAgent, Json),
    product_sample!("ai_agent.UserAudioData.json", AiAgent, Json),
    product_sample!("ai_agent.UserSpeakAction.json", AiAgent, Json),
    product_sample!("cloud_player.event_type_1.json", CloudPlayer, Json),
    product_sample!("cloud_player.event_type_10001.json", CloudPlayer, Json),
    product_sample!("digital_human.event_type_1.legacy.json", DigitalHuman, Json),
    product_sample!("digital_human.event_type_3.json", DigitalHuman, Json),
    product_sample!("digital_human.event_type_4.json", DigitalHuman, Json),
    product_sample!(
        "digital_human.event_type_4.speaking_start.json",
        DigitalHuman,
        Json
    ),
    product_sample!("mini_game.report_game_info.json", MiniGame, Json),
    product_sample!(
        "mini_game.report_game_info.response.json",
        MiniGame,
        Fragment
    ),
    product_sample!("realtime_asr.ASRResult.json", Asr, Json),
    product_sample!("realtime_asr.Exception.json", Asr, Json),
    product_sample!("realtime_asr.TranslationResult.json", Asr, Json),
    product_sample!("super_board.cvt_finish.json", SuperBoard, Json),
    product_sample!("zim.before_send_msg.json", Zim, Json),
    product_sample!("zim.before_send_msg.response.json", Zim, Fragment),
    product_sample!("zim.bot_msg.json", Zim, Json),
    product_sample!("zim.bot_msg.verbatim.txt", Zim, Broken),
    product_sample!("zim.call_accept.json", Zim, Json),
    product_sample!("zim.call_cancel.json", Zim, Json),
    product_sample!("zim.call_cancel.verbatim.txt", Zim, Broken),
    product_sample!("zim.call_create.json", Zim, Json),
    product_sample!("zim.call_invite.json", Zim, Json),
    product_sample!("zim.call_reject.json", Zim, Json),
    product_sample!("zim.call_timeout.json", Zim, Json),
    product_sample!("zim.group_create.json", Zim, Json),
    product_sample!("zim.group_create.verbatim.txt", Zim, Broken),
    product_sample!("zim.group_destroy.json", Zim, Json),
    product_sample!("zim.group_exit.json", Zim, Json),
    product_sample!("zim.group_join.en.json", Zim, Json),
    product_sample!("zim.group_join.json", Zim, Json),
    product_sample!("zim.room_create.json", Zim, Json),
    product_sample!("zim.room_create.verbatim.txt", Zim, Broken),
    product_sample!("zim.room_destroy.json", Zim, Json),
    product_sample!("zim.room_enter.json", Zim, Json),
    product_sample!("zim.room_exit.json", Zim, Json),
    product_sample!("zim.send_msg.json", Zim, Json),
    product_sample!("zim.send_msg.user_list.json", Zim, Json),
    product_sample!("zim.send_msg.user_list.verbatim.txt", Zim, Broken),
    product_sample!("zim.user_action.json", Zim, Json),
];

impl Sample {
    /// The callback this sample is of, as the catalog names it: for RTC the file name up to
    /// its first dot (`room_close`); for another product the part after the product
    /// (`products/zim.send_msg.json`: `send_msg`), a numbered event by its number
    /// (`products/cloud_player.event_type_1.json`: `1`).
    pub fn event(&self) -> &'static str {
        let name = self.file.strip_prefix("products/").unwrap_or(self.file);
        let mut parts = name.split('.');
        let first = parts.next().unwrap_or(name);
        if self.product == Product::Rtc {
            return first;
        }
        let event = parts.next().unwrap_or(first);
        event.strip_prefix("event_type_").unwrap_or(event)
    }

    /// The file name without its directory.
    pub fn name(&self) -> &'static str {
        self.file.rsplit('/').next().unwrap_or(self.file)
    }
}

/// The samples that are well-formed callbacks (JSON or form) of a product the bridge takes.
pub fn callbacks() -> impl Iterator<Item = &'static Sample> {
    ALL.iter().filter(|sample| {
        matches!(sample.encoding, SampleEncoding::Json | SampleEncoding::Form)
            && sample.product.refusal().is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_samples_is_bundled() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
        let mut files: Vec<String> = Vec::new();
        for (dir, prefix) in [(root.clone(), ""), (root.join("products"), "products/")] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let entry = entry.unwrap();
                let name = entry.file_name().into_string().unwrap();
                if entry.file_type().unwrap().is_file() && name != "README.md" {
                    files.push(format!("{prefix}{name}"));
                }
            }
        }
        files.sort();
        let mut bundled: Vec<&str> = ALL.iter().map(|sample| sample.file).collect();
        bundled.sort();
        assert_eq!(files, bundled);
    }

    #[test]
    fn product_samples_name_their_event() {
        let event = |file: &str| {
            ALL.iter()
                .find(|sample| sample.file == file)
                .unwrap()
                .event()
        };
        assert_eq!(event("room_close.form.txt"), "room_close");
        assert_eq!(event("products/zim.send_msg.user_list.json"), "send_msg");
        assert_eq!(
            event("products/cloud_player.event_type_10001.json"),
            "10001"
        );
        assert_eq!(event("products/ai_agent.ASRResult.json"), "ASRResult");
    }
}
