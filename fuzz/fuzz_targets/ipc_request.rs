//! One local API request line (see `tend::ipc::fuzzing`). The committed
//! corpus is replayed on stable by `tend`'s test `ipc::fuzzing::tests::corpus_regression`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    tend::ipc::fuzzing::ipc_request(data);
});
