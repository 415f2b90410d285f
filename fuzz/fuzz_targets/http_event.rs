//! Fuzz target: arbitrary bytes as the Lambda HTTP event (API Gateway REST or HTTP API, ALB,
//! function URL), read as the user service's Lambda handler reads it and served by the real
//! service: never a panic, never a 5xx, and every rejection problem+json that publishes
//! nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use onboarding_fuzz::serve;
use user_service::lambda::request_from_event;

fuzz_target!(|data: &[u8]| {
    // The runtime reads the event as JSON, which is UTF-8.
    let Ok(event) = std::str::from_utf8(data) else {
        return;
    };

    // An event that is not an HTTP event is an invocation error, not a response.
    if let Ok(request) = request_from_event(event) {
        serve(request).check();
    }
});
