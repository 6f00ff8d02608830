//! Fuzzes the spool's recovery and reading on arbitrary segment bytes: parsing must never panic,
//! must end, and must account for every byte as a record or as damage to quarantine, in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zego_kafka_bridge::spool::log::{parse, Parsed};

fuzz_target!(|bytes: &[u8]| {
    let mut at = 0;
    loop {
        match parse(bytes, at) {
            Parsed::Record { start, end } | Parsed::Damaged { start, end, .. } => {
                assert_eq!(start, at, "every byte is accounted for, in order");
                assert!(
                    end > start && end <= bytes.len(),
                    "progress within the bytes"
                );
                at = end;
            }
            Parsed::Incomplete { start } => {
                assert_eq!(start, at);
                break;
            }
            Parsed::End => {
                assert_eq!(at, bytes.len());
                break;
            }
        }
    }
});
