//! The app's library service without a window: adding, listing, removing, and the errors a user sees, on the real
//! demo model (POCKETLM_DEMO_MODEL, set by scripts/test.sh) and on files that are not models.

use std::path::PathBuf;

use pocketlm_app::error::Code;
use pocketlm_app::library;
use pocketlm_app::state::AppState;

fn demo() -> Option<PathBuf> {
    match std::env::var_os("POCKETLM_DEMO_MODEL") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            eprintln!("POCKETLM_DEMO_MODEL is not set: skipping (scripts/test.sh sets it)");
            None
        }
    }
}

fn state(dir: &tempfile::TempDir) -> AppState {
    AppState::new(dir.path().join("data"), dir.path().join("models"))
}

#[test]
fn add_list_details_remove() {
    let Some(demo) = demo() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    let s = state(&dir);
    let e = library::add(&s, &demo).unwrap();
    assert_eq!(e.origin, "added");
    assert_eq!(e.format, "gguf");
    assert_eq!(e.ty, "Q4_1");
    assert_eq!(e.architecture.as_deref(), Some("llama"));
    assert!(e.runnable);
    assert_eq!(e.size_bytes, std::fs::metadata(&demo).unwrap().len());
    let ids: Vec<String> = library::list(&s).into_iter().map(|e| e.id).collect();
    assert!(ids.contains(&e.id), "{ids:?}");

    let d = library::details(&s, &e.id).unwrap();
    assert_eq!(d.layers, Some(30));
    assert_eq!(d.total.bytes, d.by_group.iter().map(|g| g.tally.bytes).sum::<u64>());
    assert!(d.metadata.iter().any(|m| m.key == "general.architecture" && m.value.contains("llama")));

    // The library survives a restart (library.json), and removing forgets the entry.
    let s2 = state(&dir);
    assert!(library::list(&s2).iter().any(|x| x.id == e.id));
    library::remove(&s2, &e.id).unwrap();
    assert!(!library::list(&s2).iter().any(|x| x.id == e.id));
    assert!(demo.exists(), "removing an added model never deletes the user's file");
}

#[test]
fn bad_input_is_a_readable_error() {
    let dir = tempfile::tempdir().unwrap();
    let s = state(&dir);
    let bad = dir.path().join("corrupt.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00\xff\xff\xff").unwrap();
    let e = library::add(&s, &bad).unwrap_err();
    assert_eq!(e.code, Code::InvalidModel);
    assert!(e.message.contains("corrupt.gguf"), "{}", e.message);

    let missing = dir.path().join("nowhere.gguf");
    let e = library::add(&s, &missing).unwrap_err();
    assert!(e.message.contains("nowhere.gguf"), "{}", e.message);

    let folder = dir.path().join("not-a-model");
    std::fs::create_dir_all(&folder).unwrap();
    let e = library::add(&s, &folder).unwrap_err();
    assert_eq!(e.code, Code::InvalidModel);
    assert!(e.message.contains("not-a-model"), "{}", e.message);
    assert!(library::list(&s).is_empty(), "nothing bad was added");
}

#[test]
fn the_models_folder_is_listed_without_adding() {
    let Some(demo) = demo() else { return };
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::copy(&demo, models.join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let s = state(&dir);
    let list = library::list(&s);
    let e = list.iter().find(|e| e.path.ends_with(".Q4_1.gguf")).expect("found in the models folder");
    assert_eq!(e.origin, "added", "in the models folder, but not made by the app");
    assert_eq!(e.family, "SmolLM2-135M-Instruct");
}

#[test]
fn removing_a_file_the_app_made_deletes_it_and_an_added_one_never() {
    let Some(demo) = demo() else { return };
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    std::fs::create_dir_all(&models).unwrap();
    let made = models.join("SmolLM2-135M-Instruct-Q4_1.gguf");
    std::fs::copy(&demo, &made).unwrap();
    let made_id = std::fs::canonicalize(&made).unwrap().display().to_string();
    let s = state(&dir);
    let source = library::add(&s, &demo).unwrap();
    {
        let mut store = s.store();
        store.record_made(&made_id, &source.id);
        store.save().unwrap();
    }
    let e = library::find(&s, &made_id).unwrap();
    assert_eq!(e.derived_from.as_deref(), Some(source.id.as_str()));
    assert_eq!(e.origin, "app", "made here");
    library::remove(&s, &made_id).unwrap();
    assert!(!made.exists(), "the app's own file is deleted with its entry");
    assert!(library::find(&s, &made_id).is_err());
    library::remove(&s, &source.id).unwrap();
    assert!(demo.exists(), "the user's file stays");
}
