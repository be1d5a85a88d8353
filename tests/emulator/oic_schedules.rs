//! The OIC client's schedule API against the emulator over HTTP (real loopback, no mocks): read
//! (definition + state), create, update, put, delete, start, stop, pause, resume, run now, with
//! the recorded status codes (409/412) turned into idempotent results.

use crate::support::emulator::*;

use ferry::oic::{OicClient, ScheduleDefinition, ScheduleState};
use ferry::sim::{Seed, SimHandle};
use serde_json::json;

async fn landscape() -> SimHandle {
    start(vec![
        spec("dev2", 2, Seed::Sample),
        spec("dev3", 3, Seed::Sample),
    ])
    .await
}

async fn lifecycle(c: &OicClient) {
    let pay = id("HR_PAYROLL_EXPORT|01.00.0000");
    // The seeded schedule: iCal, started.
    let s = c.get_schedule(&pay).await.unwrap().expect("defined");
    assert_eq!(
        s.definition.ical_expression.as_deref(),
        Some("FREQ=DAILY;BYHOUR=2;BYMINUTE=0;")
    );
    assert_eq!(s.state, Some(ScheduleState::Active));
    assert!(s.is_started());
    let listed = c.get_integration(&pay).await.unwrap().unwrap();
    assert!(listed.schedule_applicable && listed.schedule_defined);

    // start when started and stop when stopped are both fine (the 412 is read as "already").
    assert_eq!(c.start_schedule(&pay).await.unwrap(), ScheduleState::Active);
    assert_eq!(
        c.stop_schedule_at(None, &pay).await.unwrap(),
        Some(ScheduleState::Cancelled)
    );
    assert_eq!(
        c.stop_schedule_at(None, &pay).await.unwrap(),
        Some(ScheduleState::Cancelled)
    );
    assert_eq!(
        c.schedule_state(&pay).await.unwrap(),
        Some(ScheduleState::Cancelled)
    );
    assert_eq!(c.start_schedule(&pay).await.unwrap(), ScheduleState::Active);

    // Replace the definition: the state is kept.
    let freq = ScheduleDefinition::from_json(&json!({
        "frequency": {"frequencyType": "DAILY", "interval": 1},
        "name": "Schedule2HR_PAYROLL_EXPORT_01_00_0000",
        "startDate": "2/14/2025|0:0:0", "endDate": null,
        "scheduleTZ": "Europe/Berlin",
        "scheduleTZDisplayName": "(UTC+01:00) Berlin - Central European Time"
    }));
    assert!(
        !c.put_schedule_at(None, &pay, &freq).await.unwrap(),
        "replaced, not created"
    );
    let s = c.get_schedule(&pay).await.unwrap().unwrap();
    assert!(s.definition.same_recurrence(&freq), "{:?}", s.definition);
    assert_eq!(s.definition, freq);
    assert_eq!(s.state, Some(ScheduleState::Active));

    // Pause / resume / set state.
    assert_eq!(
        c.pause_schedule_at(None, &pay).await.unwrap(),
        ScheduleState::Hold
    );
    assert_eq!(
        c.set_schedule_state_at(None, &pay, &ScheduleState::Active)
            .await
            .unwrap(),
        Some(ScheduleState::Active)
    );
    assert_eq!(
        c.set_schedule_state_at(None, &pay, &ScheduleState::Hold)
            .await
            .unwrap(),
        Some(ScheduleState::Hold)
    );
    assert_eq!(
        c.set_schedule_state_at(None, &pay, &ScheduleState::Cancelled)
            .await
            .unwrap(),
        Some(ScheduleState::Cancelled)
    );

    // Run now, whatever the state: the monitoring instance id comes back.
    let run = c.run_schedule_now_at(None, &pay).await.unwrap();
    assert_eq!(
        run.instance_id.as_ref().map(String::len),
        Some(22),
        "{run:?}"
    );

    // Delete while started is refused (412 with a schedule present is an error, not "none").
    c.start_schedule(&pay).await.unwrap();
    let e = c.delete_schedule_at(None, &pay).await.unwrap_err();
    assert_eq!(e.status(), Some(412), "{e}");
    c.stop_schedule(&pay).await.unwrap();
    assert!(c.delete_schedule_at(None, &pay).await.unwrap());
    assert!(
        !c.delete_schedule_at(None, &pay).await.unwrap(),
        "none left"
    );
    assert!(c.get_schedule(&pay).await.unwrap().is_none());
    assert_eq!(c.schedule_state(&pay).await.unwrap(), None);
    assert_eq!(c.stop_schedule_at(None, &pay).await.unwrap(), None);
    let e = c.start_schedule(&pay).await.unwrap_err();
    assert_eq!(e.status(), Some(412), "nothing to start: {e}");

    // Create (stopped, as OIC creates them); a second create is the recorded 409.
    let ical = ScheduleDefinition::from_json(&json!({
        "icalExpression": "FREQ=MONTHLY;BYDAY=MO,TUE;BYHOUR=12,14;BYMINUTE=20;",
        "name": "S1", "scheduleTZ": "UTC"
    }));
    c.create_schedule_at(None, &pay, &ical).await.unwrap();
    let e = c.create_schedule_at(None, &pay, &ical).await.unwrap_err();
    assert_eq!(e.status(), Some(409), "{e}");
    let s = c.get_schedule(&pay).await.unwrap().unwrap();
    assert_eq!(s.definition, ical);
    assert_eq!(s.state, Some(ScheduleState::Cancelled));
    assert!(!c.put_schedule_at(None, &pay, &freq).await.unwrap());
    assert_eq!(
        c.get_schedule(&pay).await.unwrap().unwrap().definition,
        freq
    );

    // A definition with neither recurrence is refused before any request.
    let e = c
        .create_schedule_at(None, &pay, &ScheduleDefinition::default())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "config", "{e}");

    // Not a scheduled integration: no schedule (412 → None); missing integration: 404 error.
    let other = id("HR_NEW_HIRE|01.01.0000");
    assert!(c.get_schedule(&other).await.unwrap().is_none());
    assert!(
        !c.get_integration(&other)
            .await
            .unwrap()
            .unwrap()
            .schedule_applicable
    );
    let e = c.get_schedule(&id("NOPE|01.00.0000")).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e}");
}

#[tokio::test]
async fn schedule_lifecycle_gen3() {
    let h = landscape().await;
    lifecycle(&client(&h, "dev3")).await;
}

#[tokio::test]
async fn schedule_lifecycle_gen2() {
    let h = landscape().await;
    lifecycle(&client(&h, "dev2")).await;
}

#[tokio::test]
async fn start_needs_an_active_integration() {
    let h = landscape().await;
    let c = client(&h, "dev3");
    let pay = id("HR_PAYROLL_EXPORT|01.00.0000");
    c.stop_schedule(&pay).await.unwrap();
    c.deactivate(&pay).await.unwrap();
    let e = c.start_schedule(&pay).await.unwrap_err();
    assert_eq!(e.status(), Some(412), "{e}");
    assert_eq!(
        c.schedule_state(&pay).await.unwrap(),
        Some(ScheduleState::Cancelled)
    );
}
