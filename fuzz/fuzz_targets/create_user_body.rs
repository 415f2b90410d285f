//! Fuzz target: arbitrary bytes as the body of an HTTP API `POST /users`, through the real
//! service: never a panic or a 5xx, and nothing published when the request is rejected.

#![no_main]

use libfuzzer_sys::fuzz_target;
use onboarding_fuzz::{post_users_event, serve};
use user_service::lambda::request_from_event;

fuzz_target!(|body: &[u8]| {
    let event = post_users_event(body);

    // The envelope is always well-formed, so it must be read.
    let request = request_from_event(&event).expect("a well-formed POST /users event");
    serve(request).check();
});
