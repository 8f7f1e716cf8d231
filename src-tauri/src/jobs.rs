//! Running jobs by the id the UI gave them, each with the cancel token `job_cancel` sets. A job is registered for
//! as long as its [`JobGuard`] lives, so a finished or failed job cannot be cancelled by a stale id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use pocketlm::quantize::CancelToken;

use crate::error::{AppError, AppResult, Code};

#[derive(Clone, Default)]
pub struct Jobs(Arc<Mutex<HashMap<String, CancelToken>>>);

pub struct JobGuard {
    jobs: Jobs,
    id: String,
    pub token: CancelToken,
}

impl Jobs {
    /// Registers a job; `busy` if the id is already running (the UI makes a fresh id per job).
    pub fn start(&self, id: &str) -> AppResult<JobGuard> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.contains_key(id) {
            return Err(AppError::new(Code::Busy, format!("a job with id {id} is already running")));
        }
        let token = CancelToken::new();
        map.insert(id.to_string(), token.clone());
        Ok(JobGuard { jobs: self.clone(), id: id.to_string(), token })
    }

    /// Sets the job's cancel token; false when no such job is running.
    pub fn cancel(&self, id: &str) -> bool {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(id) {
            Some(t) => {
                t.cancel();
                true
            }
            None => false,
        }
    }

    pub fn running(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.jobs.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_reaches_the_running_job_only() {
        let jobs = Jobs::default();
        let g = jobs.start("a").unwrap();
        assert_eq!(jobs.start("a").err().unwrap().code, Code::Busy);
        assert!(!jobs.cancel("b"));
        assert!(jobs.cancel("a"));
        assert!(g.token.is_cancelled());
        drop(g);
        assert_eq!(jobs.running(), 0);
        assert!(!jobs.cancel("a"), "a finished job is gone");
    }
}
