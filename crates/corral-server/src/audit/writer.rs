//! Group commit for audit records that are not part of a change (reads, refusals, failures):
//! concurrent calls' records are appended together in one transaction, each call waiting until
//! its record is stored before it answers. One commit serves many calls, which keeps the trail
//! from costing a commit per request.

use std::sync::Arc;

use corral_store::{AuditRecord, Store};
use tokio::sync::{mpsc, oneshot};

/// At most this many records go into one transaction.
const MAX_BATCH: usize = 256;
/// Records waiting for the writer; callers wait when it is full.
const QUEUE: usize = 8192;

type Job = (AuditRecord, oneshot::Sender<Result<(), String>>);

/// The handle requests use to append their record.
pub struct AuditWriter {
    queue: mpsc::Sender<Job>,
}

impl AuditWriter {
    /// Starts the writer task.
    pub fn start(store: Arc<dyn Store>) -> AuditWriter {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, jobs));
        AuditWriter { queue }
    }

    /// Appends `record`, returning once it is stored.
    pub async fn append(&self, record: AuditRecord) -> Result<(), String> {
        let (done, stored) = oneshot::channel();
        self.queue.send((record, done)).await.map_err(|_| "the audit writer has stopped".to_string())?;
        stored.await.map_err(|_| "the audit writer dropped the record".to_string())?
    }
}

async fn run(store: Arc<dyn Store>, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let records: Vec<AuditRecord> = batch.iter().map(|(r, _)| r.clone()).collect();
        match store.append_audits(&records).await {
            Ok(_) => {
                for (_, done) in batch {
                    let _ = done.send(Ok(()));
                }
            }
            // One bad record must not cost the others theirs: retry one by one.
            Err(_) => {
                for (record, done) in batch {
                    let _ = done.send(store.append_audit(&record).await.map(|_| ()).map_err(|e| e.to_string()));
                }
            }
        }
    }
}
