//! `chat::Session` on the real demo model (SmolLM2-135M-Instruct): streaming, stop reasons, prefix reuse across
//! turns, the context filling up (shift and stop), cancel, seeds, and prompts that do not fit.

#[path = "support/demo.rs"]
mod demo;

use std::sync::Arc;

use pocketlm::chat::{ChatError, GenerateParams, GenerateStats, Message, OnContextFull, Prompt, Session, StopReason};
use pocketlm::model::Model;
use pocketlm::quantize::CancelToken;
use pocketlm::sample::SamplerParams;

fn model() -> Option<Arc<Model>> {
    demo::demo_model().map(|p| Arc::new(Model::load(p).unwrap()))
}

fn greedy(max_tokens: usize) -> GenerateParams {
    GenerateParams { max_tokens, sampler: SamplerParams::greedy(), on_full: OnContextFull::Stop }
}

fn run(s: &mut Session, prompt: Prompt<'_>, params: &GenerateParams) -> (String, GenerateStats) {
    let mut text = String::new();
    let stats = s.generate(prompt, params, &mut |p| text.push_str(p), &CancelToken::new()).unwrap();
    (text, stats)
}

#[test]
fn a_chat_reply_streams_and_ends_at_the_end_of_turn() {
    let Some(m) = model() else { return };
    let mut s = Session::new(m, 1024).unwrap();
    let msgs = [Message::new("user", "What is the capital of France? Answer in one word.")];
    let mut pieces = Vec::new();
    let stats = s
        .generate(Prompt::Chat(&msgs), &greedy(64), &mut |p| pieces.push(p.to_string()), &CancelToken::new())
        .unwrap();
    let text: String = pieces.concat();
    assert!(text.contains("Paris"), "{text:?}");
    assert_eq!(stats.stop_reason, StopReason::EndOfGeneration, "{text:?}");
    assert!(pieces.len() > 1 || stats.generated_tokens == 1, "streamed in pieces");
    assert!(!text.contains("<|im_end|>"), "control tokens are not shown: {text:?}");
    assert_eq!(stats.context_used, stats.prompt_tokens + stats.generated_tokens);
    assert!(stats.generation_tokens_per_second >= 0.0 && stats.time_to_first_token_seconds > 0.0);
}

#[test]
fn a_second_turn_reuses_the_cache_and_equals_a_fresh_session() {
    let Some(m) = model() else { return };
    let mut s = Session::new(m.clone(), 1024).unwrap();
    let mut msgs = vec![Message::new("system", "You are a concise assistant."), Message::new("user", "Name a colour.")];
    let (first, st1) = run(&mut s, Prompt::Chat(&msgs), &greedy(24));
    assert_eq!(st1.reused_tokens, 0);
    msgs.push(Message::new("assistant", first.as_str()));
    msgs.push(Message::new("user", "Name another one."));
    let (second, st2) = run(&mut s, Prompt::Chat(&msgs), &greedy(24));
    assert!(st2.reused_tokens > st1.prompt_tokens / 2, "reused {} of {}", st2.reused_tokens, st2.prompt_tokens);

    let mut fresh = Session::new(m, 1024).unwrap();
    let (again, st3) = run(&mut fresh, Prompt::Chat(&msgs), &greedy(24));
    assert_eq!(st3.reused_tokens, 0);
    assert_eq!(second, again, "reply with a reused cache differs from a fresh one");
}

#[test]
fn max_tokens_and_the_same_seed_give_the_same_text() {
    let Some(m) = model() else { return };
    let mut s = Session::new(m, 512).unwrap();
    let params = GenerateParams {
        max_tokens: 20,
        sampler: SamplerParams { temperature: 1.0, seed: 42, ..Default::default() },
        on_full: OnContextFull::Stop,
    };
    let (a, st) = run(&mut s, Prompt::Text("Once upon a time"), &params);
    assert_eq!((st.stop_reason, st.generated_tokens), (StopReason::MaxTokens, 20));
    s.reset();
    let (b, st_b) = run(&mut s, Prompt::Text("Once upon a time"), &params);
    assert_eq!(st_b.reused_tokens, 0, "reset forgets the cache");
    assert_eq!(a, b);
    let other = GenerateParams { sampler: SamplerParams { seed: 7, ..params.sampler.clone() }, ..params.clone() };
    let texts: Vec<String> = (0..3).map(|_| run(&mut s, Prompt::Text("Once upon a time"), &other).0).collect();
    assert!(texts.iter().all(|t| t == &texts[0]), "same seed, same text");
}

#[test]
fn a_full_context_stops_or_shifts_as_asked() {
    let Some(m) = model() else { return };
    let prompt = "The numbers from one to fifty: one, two, three,";
    let mut s = Session::new(m.clone(), 48).unwrap();
    let (_, st) = run(&mut s, Prompt::Text(prompt), &greedy(200));
    assert_eq!(st.stop_reason, StopReason::ContextFull);
    assert_eq!(st.context_used, 48);
    assert!(st.generated_tokens < 48);

    let mut s = Session::new(m, 48).unwrap();
    let shift = GenerateParams { on_full: OnContextFull::Shift { keep: 1 }, ..greedy(100) };
    let (text, st) = run(&mut s, Prompt::Text(prompt), &shift);
    assert_eq!((st.stop_reason, st.generated_tokens), (StopReason::MaxTokens, 100), "{text:?}");
    assert!(st.context_shifts >= 2 && st.context_used <= 48, "{st:?}");
    assert!(text.len() > 100, "{text:?}");
}

#[test]
fn a_prompt_that_cannot_fit_is_an_error_and_the_session_goes_on() {
    let Some(m) = model() else { return };
    let mut s = Session::new(m, 16).unwrap();
    let long = "word ".repeat(40);
    let err = s.generate(Prompt::Text(&long), &greedy(4), &mut |_| {}, &CancelToken::new()).unwrap_err();
    assert!(matches!(err, ChatError::PromptTooLong { n_ctx: 16, .. }), "{err}");
    assert!(err.to_string().contains("context holds 16"), "{err}");
    // SmolLM2 adds no BOS, so an empty text is no tokens at all.
    let err = s.generate(Prompt::Text(""), &greedy(4), &mut |_| {}, &CancelToken::new()).unwrap_err();
    assert!(matches!(err, ChatError::EmptyPrompt), "{err}");
    let (_, st) = run(&mut s, Prompt::Text("Hello"), &greedy(4));
    assert_eq!(st.generated_tokens, 4);
}

#[test]
fn cancel_stops_within_a_token() {
    let Some(m) = model() else { return };
    let mut s = Session::new(m, 256).unwrap();
    let cancel = CancelToken::new();
    let mut n = 0;
    let stats = s
        .generate(
            Prompt::Text("The numbers from one to fifty: one, two, three,"),
            &greedy(200),
            &mut |_| {
                n += 1;
                if n == 3 {
                    cancel.cancel();
                }
            },
            &cancel,
        )
        .unwrap();
    assert_eq!(stats.stop_reason, StopReason::Cancelled);
    assert!(stats.generated_tokens <= 4, "{stats:?}");
    // Cancelled before it starts: nothing is evaluated.
    let stats = s.generate(Prompt::Text("Hi"), &greedy(10), &mut |_| {}, &cancel).unwrap();
    assert_eq!((stats.stop_reason, stats.generated_tokens), (StopReason::Cancelled, 0));
}
