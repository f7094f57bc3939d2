//! Any bytes as a stored ledger list or cursor (plain or compressed JSON): an error or a value,
//! never a panic or a huge allocation.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ledger::info::decode::<ledger::info::ManagedLedgerInfo>("fuzz", data);
    let _ = ledger::info::decode::<ledger::info::CursorInfo>("fuzz", data);
});
