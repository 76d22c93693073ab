//! Agents kept running between rounds (`probe --stream`): churn probes the same sources every
//! few milliseconds, and an exec per row through the API server costs a round 0.7-6 s on a
//! small cluster. A kept agent takes a batch a line on stdin and answers with its result lines.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams, AttachedProcess};
use netmatrix_cluster::{PodKey, ProbeResult, Row, batch_to_json, parse_results};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines, ReadHalf, SimplexStream, WriteHalf};

use crate::config::error_chain;
use crate::pods::{AGENT, CONTAINER};

/// How long a kept agent waits for its next batch before it ends by itself: a run that
/// vanished leaves no agent behind for long.
const IDLE: &str = "60s";

/// One source pod's kept agent.
pub struct Session {
    stdin: WriteHalf<SimplexStream>,
    stdout: Lines<BufReader<ReadHalf<SimplexStream>>>,
    stderr: ReadHalf<SimplexStream>,
    /// Dropped last (fields drop in order): stdin's end is sent before the exec's stream ends.
    _process: AttachedProcess,
}

impl Session {
    async fn open(pods: &Api<Pod>, pod: &str) -> Result<Session, String> {
        let params = AttachParams::default().container(CONTAINER).stdin(true).stdout(true).stderr(true);
        let command = vec![AGENT.to_owned(), "probe".into(), "--stream".into(), "--idle".into(), IDLE.into()];
        let mut process = pods.exec(pod, command, &params).await.map_err(|e| format!("exec: {}", error_chain(&e)))?;
        Ok(Session {
            stdin: process.stdin().expect("stdin requested"),
            stdout: BufReader::new(process.stdout().expect("stdout requested")).lines(),
            stderr: process.stderr().expect("stderr requested"),
            _process: process,
        })
    }

    /// One batch: its line written, its result lines read.
    async fn probe(&mut self, row: &Row) -> Result<Vec<ProbeResult>, String> {
        let mut line = batch_to_json(&row.probes);
        line.push('\n');
        let sent = async {
            self.stdin.write_all(line.as_bytes()).await?;
            self.stdin.flush().await
        };
        if let Err(e) = sent.await {
            return Err(self.ended(format!("writing the batch: {e}")).await);
        }
        let mut text = String::new();
        for _ in 0..row.probes.len() {
            match self.stdout.next_line().await {
                Ok(Some(result)) => {
                    text.push_str(&result);
                    text.push('\n');
                }
                Ok(None) => return Err(self.ended("the agent ended".into()).await),
                Err(e) => return Err(format!("reading the agent's results: {e}")),
            }
        }
        parse_results(&text, row.probes.len())
    }

    /// Why the agent stopped answering, with what it said on stderr, if it said it promptly.
    async fn ended(&mut self, what: String) -> String {
        let mut said = String::new();
        let _ = tokio::time::timeout(Duration::from_millis(500), self.stderr.read_to_string(&mut said)).await;
        match said.trim() {
            "" => what,
            said => format!("{what}: {said}"),
        }
    }
}

/// Kept agents by source pod. A round takes its rows' sessions out and puts back those that
/// answered, so rows run concurrently without holding the lock.
#[derive(Default)]
pub struct Sessions {
    kept: Mutex<HashMap<PodKey, Session>>,
    /// Set once a source's agent could not stream while a one-shot exec worked (an agent image
    /// older than `probe --stream`): agents are then started per row, as `run` does.
    refused: AtomicBool,
}

impl Sessions {
    pub fn take(&self, pod: &PodKey) -> Option<Session> {
        self.kept.lock().unwrap().remove(pod)
    }

    pub fn keep(&self, pod: PodKey, session: Session) {
        self.kept.lock().unwrap().insert(pod, session);
    }

    /// Ends every kept agent (teardown) or one pod's (the pod is going).
    pub fn end(&self, pod: Option<&PodKey>) {
        let mut kept = self.kept.lock().unwrap();
        match pod {
            Some(pod) => drop(kept.remove(pod)),
            None => kept.clear(),
        }
    }

    pub fn refused(&self) -> bool {
        self.refused.load(Ordering::Relaxed)
    }

    /// One row through its kept agent: the one kept (if it still answers), else a new one; a
    /// source whose agent cannot stream gets a one-shot exec, and later rounds do the same.
    pub async fn probe(&self, pods: &Api<Pod>, row: &Row) -> Result<Vec<ProbeResult>, String> {
        let within = |what: &'static str| move |_| format!("{what} did not finish within {:?}", row.deadline);
        if let Some(mut session) = self.take(&row.source) {
            // A failure here is a pod recreated or an agent ended while idle: start a new one.
            if let Ok(Ok(results)) = tokio::time::timeout(row.deadline, session.probe(row)).await {
                self.keep(row.source.clone(), session);
                return Ok(results);
            }
        }
        let streamed = tokio::time::timeout(row.deadline, async {
            let mut session = Session::open(pods, &row.source.name).await?;
            let results = session.probe(row).await?;
            Ok::<_, String>((session, results))
        })
        .await
        .map_err(within("starting the kept agent"))
        .flatten();
        if let Ok((session, results)) = streamed {
            self.keep(row.source.clone(), session);
            return Ok(results);
        }
        let once = crate::exec::run_batch(pods, &row.source.name, batch_to_json(&row.probes), row.deadline).await;
        let results = once.and_then(|out| parse_results(&out, row.probes.len()))?;
        self.refused.store(true, Ordering::Relaxed);
        Ok(results)
    }
}
