//! The framework's service tests: a hand-built `echo.Echo` handler (the generated-code
//! path is tested by `examples/helloworld`) served through `start_local`.

mod fixture;
mod t10_calls;
mod t20_supervision;
mod t30_service;
mod t40_process;
