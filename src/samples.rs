//! ZEGO's own sample callbacks, bundled so `zego-kafka-bridge send` works without files.
//!
//! `samples/` holds the vendor documentation's samples as printed (see its README); the
//! `.verbatim.txt` files are the ones that are not valid JSON as printed.

/// How a sample body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleEncoding {
    Json,
    Form,
    /// Printed in the docs but not valid JSON: a receiver must refuse it with 400.
    Broken,
    /// Not a callback: the content of another sample's field (`procedure`'s `extra_params`).
    Fragment,
}

#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub file: &'static str,
    pub encoding: SampleEncoding,
    pub body: &'static str,
}

macro_rules! sample {
    ($file:literal, $encoding:ident) => {
        Sample {
            file: $file,
            encoding: SampleEncoding::$encoding,
            body: include_str!(concat!("../samples/", $file)),
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
];

impl Sample {
    /// The callback this sample is of: the file name up to its first dot.
    pub fn event(&self) -> &'static str {
        self.file.split('.').next().unwrap_or(self.file)
    }
}

/// The samples that are well-formed callbacks (JSON or form).
pub fn callbacks() -> impl Iterator<Item = &'static Sample> {
    ALL.iter()
        .filter(|sample| matches!(sample.encoding, SampleEncoding::Json | SampleEncoding::Form))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_samples_is_bundled() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .filter(|name| name != "README.md")
            .collect();
        files.sort();
        let bundled: Vec<&str> = ALL.iter().map(|sample| sample.file).collect();
        assert_eq!(files, bundled);
    }
}
