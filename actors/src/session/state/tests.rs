//! Unit tests of the session's decisions.

use super::*;
use sessiond_store::testing::conformance::{fresh_tenant, msg, new_meta};
use tokio_util::sync::CancellationToken;

fn state() -> SessionState {
    SessionState::new(new_meta(&fresh_tenant(), "p", None), 1)
}

fn fake_run(st: &mut SessionState, plan: &RunPlan) {
    let token = CancellationToken::new();
    st.run = Some(ActiveRun::new(plan.run_id, token, None));
}

#[test]
fn prompts_run_in_order_only_once_durable() {
    let mut st = state();
    let (w1, r1) = st.accept_prompt("one".into(), false, None, 1);
    let (_, r2) = st.accept_prompt("two".into(), false, None, 2);
    assert_eq!((r1.message_seq, r1.queued), (1, false));
    assert_eq!((r2.message_seq, r2.queued), (2, true));
    assert_eq!(w1.messages[0].role, Role::User);
    assert!(st.next_run(3).is_none(), "not durable yet");
    st.prompt_committed(r2.run_id);
    assert!(
        st.next_run(3).is_none(),
        "the head is not durable: FIFO holds"
    );
    st.prompt_committed(r1.run_id);
    let (plan, w) = st.next_run(3).unwrap();
    assert_eq!(plan.run_id, r1.run_id);
    assert_eq!(w.meta.unwrap().status, SessionStatus::Running);
    fake_run(&mut st, &plan);
    assert!(st.next_run(4).is_none(), "one run at a time");
}

#[test]
fn driver_output_gets_dense_seqs_and_end_sums_usage() {
    let mut st = state();
    let (_, r) = st.accept_prompt("hi".into(), false, None, 1);
    st.prompt_committed(r.run_id);
    let (plan, _) = st.next_run(2).unwrap();
    fake_run(&mut st, &plan);
    let w = st
        .driver_message(plan.run_id, Role::Assistant, "echo: hi".into(), None, 3)
        .unwrap();
    assert_eq!(w.messages[0].seq, 2);
    assert!(
        st.driver_message(RunId::generate(), Role::Assistant, "late".into(), None, 3)
            .is_none()
    );
    st.run.as_mut().unwrap().usage = Usage {
        input_tokens: 1,
        output_tokens: 2,
        context_tokens: 0,
        cost_usd: 0.5,
    };
    let (w, _) = st
        .end_run(plan.run_id, DriverOutcome::Completed, 4)
        .unwrap();
    let meta = w.meta.unwrap();
    assert_eq!(meta.status, SessionStatus::Idle);
    assert_eq!(meta.usage.output_tokens, 2);
    assert_eq!(meta.last_run.unwrap().outcome, Some(RunOutcome::Completed));
    assert_eq!(st.next_seq, 3);
}

#[test]
fn a_queued_prompt_runs_after_the_previous_answer() {
    let mut st = state();
    let (_, r1) = st.accept_prompt("p1".into(), false, None, 1);
    st.prompt_committed(r1.run_id);
    let (plan1, _) = st.next_run(2).unwrap();
    fake_run(&mut st, &plan1);
    let (_, r2) = st.accept_prompt("p2".into(), false, None, 3); // seq 2, queued
    let (_, r3) = st.accept_prompt("p3".into(), false, None, 3); // seq 3, queued
    let a1 = st
        .driver_message(plan1.run_id, Role::Assistant, "a1".into(), None, 4)
        .unwrap(); // seq 4
    st.end_run(plan1.run_id, DriverOutcome::Completed, 5)
        .unwrap();
    st.prompt_committed(r2.run_id);
    st.prompt_committed(r3.run_id);
    let (plan2, _) = st.next_run(6).unwrap();
    let log = vec![
        msg(1, Role::User, "p1"),
        msg(2, Role::User, "p2"),
        msg(3, Role::User, "p3"),
        a1.messages[0].clone(),
    ];
    let history: Vec<_> = plan2.history(log).into_iter().map(|m| m.content).collect();
    assert_eq!(history, vec!["p1", "a1", "p2"]);
}

#[test]
fn a_failed_run_leaves_a_system_note() {
    let mut st = state();
    let (_, r) = st.accept_prompt("hi".into(), false, None, 1);
    st.prompt_committed(r.run_id);
    let (plan, _) = st.next_run(2).unwrap();
    fake_run(&mut st, &plan);
    let (w, _) = st
        .end_run(plan.run_id, DriverOutcome::Failed("boom".into()), 3)
        .unwrap();
    assert_eq!(w.messages[0].role, Role::System);
    assert!(w.messages[0].content.contains("boom"));
    assert_eq!(
        w.meta.unwrap().last_run.unwrap().outcome,
        Some(RunOutcome::Failed)
    );
}

#[test]
fn restore_interrupts_the_open_run_and_requeues_unrun_prompts() {
    let mut meta = new_meta(&fresh_tenant(), "p", None);
    let run_id = RunId::generate();
    meta.status = SessionStatus::Running;
    meta.last_seq = 3;
    meta.last_run = Some(LastRun {
        run_id,
        prompt_seq: 1,
        outcome: None,
        error: None,
        started_at_ms: 1,
        ended_at_ms: None,
        usage: Usage::default(),
    });
    meta.queued = vec![3];
    let mut st = SessionState::new(meta, 2);
    let log = vec![
        msg(2, Role::Assistant, "partial"),
        msg(3, Role::User, "queued"),
    ];
    let w = st.restore(&log, 10).unwrap();
    assert_eq!(w.messages[0].seq, 4);
    assert_eq!(w.messages[0].role, Role::System);
    let meta = w.meta.unwrap();
    assert_eq!(meta.status, SessionStatus::Interrupted);
    assert_eq!(
        meta.last_run.unwrap().outcome,
        Some(RunOutcome::Interrupted)
    );
    assert_eq!(st.queue.len(), 1);
    assert_eq!(st.queue[0].seq, 3);
    let (plan, _) = st.next_run(11).unwrap();
    assert_eq!(plan.prompt, "queued");
}

fn tool_msg(seq: u64, role: Role, call: &str) -> Message {
    let mut m = msg(seq, role, call);
    m.tool = Some(ToolInfo {
        call_id: Some(call.into()),
        name: Some("bash".into()),
        ..ToolInfo::default()
    });
    m
}

#[test]
fn restore_answers_a_tool_call_left_without_result() {
    let mut meta = new_meta(&fresh_tenant(), "p", None);
    let run_id = RunId::generate();
    meta.status = SessionStatus::Running;
    meta.last_seq = 4;
    meta.last_run = Some(LastRun {
        run_id,
        prompt_seq: 1,
        outcome: None,
        error: None,
        started_at_ms: 1,
        ended_at_ms: None,
        usage: Usage::default(),
    });
    let mut st = SessionState::new(meta, 2);
    // call-a got its result; call-b did not (the crash came between them).
    let mut log = vec![
        tool_msg(2, Role::ToolCall, "call-a"),
        tool_msg(3, Role::ToolResult, "call-a"),
        tool_msg(4, Role::ToolCall, "call-b"),
    ];
    for m in &mut log {
        m.run_id = Some(run_id);
    }
    let w = st.restore(&log, 10).unwrap();
    let synthetic = &w.messages[0];
    assert_eq!((synthetic.seq, synthetic.role), (5, Role::ToolResult));
    let tool = synthetic.tool.as_ref().unwrap();
    assert_eq!(tool.call_id.as_deref(), Some("call-b"));
    assert!(tool.is_error);
    assert_eq!(
        w.messages[1].role,
        Role::System,
        "then the interruption note"
    );
}

#[test]
fn an_aborted_run_closes_its_open_tool_calls() {
    let mut st = state();
    let (_, r) = st.accept_prompt("hi".into(), false, None, 1);
    st.prompt_committed(r.run_id);
    let (plan, _) = st.next_run(2).unwrap();
    fake_run(&mut st, &plan);
    let call = tool_msg(0, Role::ToolCall, "call-1");
    st.driver_message(plan.run_id, Role::ToolCall, "ls".into(), call.tool, 3)
        .unwrap();
    let (w, _) = st
        .end_run(plan.run_id, DriverOutcome::Cancelled, 4)
        .unwrap();
    assert_eq!(w.messages.len(), 1);
    assert_eq!(w.messages[0].role, Role::ToolResult);
    assert!(w.messages[0].tool.as_ref().unwrap().is_error);
}

#[test]
fn restore_runs_the_queue_in_its_order_not_seq_order() {
    // A steer (seq 4) ran ahead of prompts 2 and 3, which still wait; the prompt
    // order survives a restart, and the steer does not run again.
    let mut st = state();
    let (_, p1) = st.accept_prompt("p1".into(), false, None, 1);
    st.prompt_committed(p1.run_id);
    let (plan, _) = st.next_run(2).unwrap();
    fake_run(&mut st, &plan);
    let (_, p2) = st.accept_prompt("p2".into(), false, None, 3);
    let (_, p3) = st.accept_prompt("p3".into(), false, None, 3);
    st.end_run(plan.run_id, DriverOutcome::Cancelled, 4)
        .unwrap();
    let (_, s4) = st.accept_prompt("steer".into(), true, Some(plan.run_id), 5);
    for r in [p2, p3, s4] {
        st.prompt_committed(r.run_id);
    }
    let (steer_plan, w) = st.next_run(6).unwrap();
    assert_eq!(steer_plan.prompt, "steer");
    let meta = w.meta.unwrap();
    assert_eq!(meta.queued, vec![2, 3]);
    let mut restored = SessionState::new(meta.clone(), 3);
    assert_eq!(
        SessionState::restore_from(&meta),
        1,
        "reads from the first queued prompt"
    );
    let log = vec![
        msg(2, Role::User, "p2"),
        msg(3, Role::User, "p3"),
        msg(4, Role::User, "steer"),
    ];
    restored.restore(&log, 7);
    let order: Vec<_> = restored.queue.iter().map(|q| q.prompt.as_str()).collect();
    assert_eq!(order, vec!["p2", "p3"]);
}
