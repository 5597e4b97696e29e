//! The durable outbox of messages for the collector, in `state_dir/outbox/`:
//! append-only segment files of length-prefixed, CRC-checked records (each
//! an encoded `AgentMessage`, or a marker saying that old drift events were
//! folded), fsynced once per appended batch, and an `acked` file replaced
//! atomically. Opening replays the segments: a torn or corrupt tail is cut
//! off, records at or below the acknowledged sequence number are dropped, and
//! segments with nothing left to send are deleted. A `kill -9` at any moment
//! loses no record whose append returned, and corrupts nothing.
//!
//! The queue is bounded by a number of drift events: past it, the oldest
//! drift events are folded (dropped, with a warning in the log) and the next
//! snapshot appended says how many in its `folded_events`.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use hardend_proto as pb;
use prost::Message;

/// The outbox's directory inside the state directory.
pub const OUTBOX_DIR: &str = "outbox";
/// The file holding the highest acknowledged sequence number.
pub const ACKED_FILE: &str = "acked";
/// The default bound on queued drift events.
pub const DEFAULT_MAX_DRIFT_EVENTS: usize = hardend_policy::config::DEFAULT_OUTBOX_MAX_DRIFT_EVENTS;
/// The default size at which a new segment is started.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 * 1024 * 1024;
/// A record longer than this is corrupt (a snapshot of thousands of results
/// with evidence stays far below it).
pub const MAX_RECORD_BYTES: u32 = 64 * 1024 * 1024;

/// Bytes before a record's body: its length and its CRC-32, little-endian.
const HEADER: usize = 8;
/// Body tag of an encoded `AgentMessage`.
const TAG_MESSAGE: u8 = 1;
/// Body tag of a fold marker: through-seq and count, both u64 little-endian.
const TAG_FOLD: u8 = 2;
/// The first line of the acked file.
const ACKED_FORMAT: &str = "hardend.outbox.acked/v1";

/// Problems with the outbox's files.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// A file or directory of the outbox could not be used.
    #[error("{}: {action}: {source}", .path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// A message to append does not follow the last one's sequence number.
    #[error("outbox: sequence number {seq} does not follow the last one queued ({last})")]
    OutOfOrder { seq: u64, last: u64 },
    /// A message to append carries no sequence number (a Hello, or nothing).
    #[error("outbox: only snapshots and drift events are queued")]
    NotQueueable,
    /// A queued record no longer decodes (the disk changed under us).
    #[error("{}: record at offset {offset} is corrupt: {reason}", .path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

fn io_err(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> OutboxError {
    let path = path.to_path_buf();
    move |source| OutboxError::Io {
        path,
        action,
        source,
    }
}

/// How an outbox is bounded and cut into files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxOptions {
    /// Past this many queued drift events the oldest are folded.
    pub max_drift_events: usize,
    /// A segment that reaches this size is closed and a new one started.
    pub segment_bytes: u64,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            max_drift_events: DEFAULT_MAX_DRIFT_EVENTS,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// What a queued message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    Drift,
    Snapshot,
}

/// One queued message: where its record is.
#[derive(Debug, Clone, Copy)]
struct Entry {
    seq: u64,
    kind: EntryKind,
    segment: u64,
    /// Offset of the record's body (after the header).
    offset: u64,
    len: u32,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
    /// Entries of this segment still queued.
    live: usize,
    /// The segment holds a fold marker that no later snapshot has carried.
    pending_fold: bool,
}

/// What opening an outbox found, for the log and for tests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records read back intact.
    pub records: usize,
    /// Torn or corrupt tails cut off, as (segment file, offset).
    pub truncated: Vec<(PathBuf, u64)>,
    /// Segments deleted because nothing in them was left to send.
    pub deleted_segments: usize,
}

/// The outbox. Not shared by itself: the daemon wraps it in a mutex.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    options: OutboxOptions,
    segments: BTreeMap<u64, Segment>,
    active: u64,
    entries: VecDeque<Entry>,
    acked: u64,
    last_seq: u64,
    drift_count: usize,
    pending_folded: u64,
    folded_total: u64,
}

/// A record's body as read back.
enum Body {
    Message(Box<pb::AgentMessage>),
    Fold { through: u64, count: u64 },
}

fn segment_name(id: u64) -> String {
    format!("seg-{id:020}.log")
}

fn segment_id(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn seq_of(message: &pb::AgentMessage) -> Option<(u64, EntryKind)> {
    match &message.body {
        Some(pb::agent_message::Body::Drift(d)) => Some((d.seq, EntryKind::Drift)),
        Some(pb::agent_message::Body::Snapshot(s)) => Some((s.seq, EntryKind::Snapshot)),
        _ => None,
    }
}

fn frame(body: &[u8], out: &mut Vec<u8>) {
    // Bodies are bounded by MAX_RECORD_BYTES before framing.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
    out.extend_from_slice(body);
}

fn decode_body(body: &[u8]) -> Result<Body, String> {
    match body.split_first() {
        Some((&TAG_MESSAGE, rest)) => pb::AgentMessage::decode(rest)
            .map(|m| Body::Message(Box::new(m)))
            .map_err(|e| e.to_string()),
        Some((&TAG_FOLD, rest)) if rest.len() == 16 => {
            let mut a = [0u8; 8];
            let mut b = [0u8; 8];
            a.copy_from_slice(&rest[..8]);
            b.copy_from_slice(&rest[8..]);
            Ok(Body::Fold {
                through: u64::from_le_bytes(a),
                count: u64::from_le_bytes(b),
            })
        }
        Some((tag, _)) => Err(format!("unknown record tag {tag}")),
        None => Err("empty record".to_string()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "cannot sync the directory"))
}

impl Outbox {
    /// Opens (creating with mode 0700) `state_dir/outbox` and replays it.
    pub fn open(
        state_dir: &Path,
        options: OutboxOptions,
    ) -> Result<(Outbox, ReplayReport), OutboxError> {
        let dir = state_dir.join(OUTBOX_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_err(&dir, "cannot create the outbox directory"))?;
        let acked = read_acked(&dir.join(ACKED_FILE));
        let mut ids: Vec<u64> = fs::read_dir(&dir)
            .map_err(io_err(&dir, "cannot list the outbox"))?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(segment_id))
            .collect();
        ids.sort_unstable();
        let mut outbox = Outbox {
            dir: dir.clone(),
            options,
            segments: BTreeMap::new(),
            active: 0,
            entries: VecDeque::new(),
            acked,
            last_seq: acked,
            drift_count: 0,
            pending_folded: 0,
            folded_total: 0,
        };
        let mut report = ReplayReport::default();
        for id in ids {
            outbox.replay_segment(id, &mut report)?;
        }
        // Start a fresh segment when there is none or the last one is full.
        let reuse = outbox
            .segments
            .last_key_value()
            .filter(|(_, s)| s.len < options.segment_bytes)
            .map(|(id, _)| *id);
        match reuse {
            Some(id) => outbox.active = id,
            None => {
                let next = outbox.segments.keys().next_back().map_or(1, |id| id + 1);
                outbox.new_segment(next)?;
            }
        }
        report.deleted_segments += outbox.delete_spent()?;
        Ok((outbox, report))
    }

    fn replay_segment(&mut self, id: u64, report: &mut ReplayReport) -> Result<(), OutboxError> {
        let path = self.dir.join(segment_name(id));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path, "cannot open the segment"))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_err(&path, "cannot read the segment"))?;
        let mut offset = 0usize;
        let mut segment = Segment {
            path: path.clone(),
            file,
            len: 0,
            live: 0,
            pending_fold: false,
        };
        let mut cut = None;
        while offset < bytes.len() {
            let Some(header) = bytes.get(offset..offset + HEADER) else {
                cut = Some("a torn record header");
                break;
            };
            let mut len4 = [0u8; 4];
            let mut crc4 = [0u8; 4];
            len4.copy_from_slice(&header[..4]);
            crc4.copy_from_slice(&header[4..]);
            let len = u32::from_le_bytes(len4);
            if len == 0 || len > MAX_RECORD_BYTES {
                cut = Some("an impossible record length");
                break;
            }
            let start = offset + HEADER;
            let Some(body) = bytes.get(start..start + len as usize) else {
                cut = Some("a torn record");
                break;
            };
            if crc32fast::hash(body) != u32::from_le_bytes(crc4) {
                cut = Some("a record whose CRC does not match");
                break;
            }
            let decoded = match decode_body(body) {
                Ok(b) => b,
                Err(_) => {
                    cut = Some("a record that does not decode");
                    break;
                }
            };
            report.records += 1;
            match decoded {
                Body::Message(message) => {
                    if let Some((seq, kind)) = seq_of(&message) {
                        self.last_seq = self.last_seq.max(seq);
                        if kind == EntryKind::Snapshot {
                            self.carried_fold();
                            segment.pending_fold = false;
                        }
                        let queued = seq > self.acked
                            && self.entries.back().is_none_or(|last| seq > last.seq);
                        if queued {
                            self.entries.push_back(Entry {
                                seq,
                                kind,
                                segment: id,
                                offset: start as u64,
                                len,
                            });
                            segment.live += 1;
                            if kind == EntryKind::Drift {
                                self.drift_count += 1;
                            }
                        }
                    }
                }
                Body::Fold { through, count } => {
                    self.pending_folded = self.pending_folded.saturating_add(count);
                    self.folded_total = self.folded_total.saturating_add(count);
                    segment.pending_fold = true;
                    // The segment is not in the map yet: count its own losses here.
                    let own = self.remove_drift_through(through, Some(id));
                    segment.live -= own.min(segment.live);
                }
            }
            offset = start + len as usize;
        }
        if let Some(reason) = cut {
            tracing::warn!(
                segment = %path.display(),
                offset,
                reason,
                "outbox: cutting off a torn or corrupt tail"
            );
            segment
                .file
                .set_len(offset as u64)
                .and_then(|()| segment.file.sync_all())
                .map_err(io_err(&path, "cannot truncate the segment"))?;
            report.truncated.push((path, offset as u64));
        }
        segment.len = offset as u64;
        self.segments.insert(id, segment);
        Ok(())
    }

    /// A snapshot carries every fold so far: no segment keeps a marker alive.
    fn carried_fold(&mut self) {
        self.pending_folded = 0;
        for s in self.segments.values_mut() {
            s.pending_fold = false;
        }
    }

    /// Removes the queued drift events with seq <= `through`; returns how
    /// many of them were in `skip_segment` (not yet in the map).
    fn remove_drift_through(&mut self, through: u64, skip_segment: Option<u64>) -> usize {
        let mut own = 0;
        let segments = &mut self.segments;
        let mut removed = 0;
        self.entries.retain(|e| {
            if e.kind == EntryKind::Drift && e.seq <= through {
                removed += 1;
                if Some(e.segment) == skip_segment {
                    own += 1;
                } else if let Some(s) = segments.get_mut(&e.segment) {
                    s.live = s.live.saturating_sub(1);
                }
                false
            } else {
                true
            }
        });
        self.drift_count -= removed.min(self.drift_count);
        own
    }

    fn new_segment(&mut self, id: u64) -> Result<(), OutboxError> {
        let path = self.dir.join(segment_name(id));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path, "cannot create the segment"))?;
        sync_dir(&self.dir)?;
        self.segments.insert(
            id,
            Segment {
                path,
                file,
                len: 0,
                live: 0,
                pending_fold: false,
            },
        );
        self.active = id;
        Ok(())
    }

    /// Deletes the closed segments with nothing left to send.
    fn delete_spent(&mut self) -> Result<usize, OutboxError> {
        let spent: Vec<u64> = self
            .segments
            .iter()
            .filter(|(id, s)| **id != self.active && s.live == 0 && !s.pending_fold)
            .map(|(id, _)| *id)
            .collect();
        for id in &spent {
            if let Some(s) = self.segments.remove(id) {
                match fs::remove_file(&s.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&s.path, "cannot delete the segment")(e)),
                }
            }
        }
        Ok(spent.len())
    }

    /// Writes framed records to the active segment (starting a new one when
    /// it is full) and fsyncs once. Returns the body offset of each record.
    fn write_records(&mut self, bodies: &[Vec<u8>]) -> Result<Vec<(u64, u64)>, OutboxError> {
        if self
            .segments
            .get(&self.active)
            .is_some_and(|s| s.len >= self.options.segment_bytes)
        {
            let next = self.active + 1;
            self.new_segment(next)?;
            self.delete_spent()?;
        }
        let Some(segment) = self.segments.get_mut(&self.active) else {
            let path = self.dir.join(segment_name(self.active));
            return Err(OutboxError::Io {
                path,
                action: "the active segment is gone",
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        };
        let mut buf = Vec::new();
        let mut at = Vec::with_capacity(bodies.len());
        for body in bodies {
            at.push((self.active, segment.len + (buf.len() + HEADER) as u64));
            frame(body, &mut buf);
        }
        let write = segment
            .file
            .write_all_at(&buf, segment.len)
            .and_then(|()| segment.file.sync_data());
        if let Err(e) = write {
            // Whatever part was written is cut off again, so the next append
            // starts on a record boundary.
            let _ = segment.file.set_len(segment.len);
            return Err(io_err(&segment.path, "cannot append to the segment")(e));
        }
        segment.len += buf.len() as u64;
        Ok(at)
    }

    /// Appends messages (drift events and snapshots, in increasing sequence
    /// order) durably: when this returns `Ok`, a `kill -9` cannot lose them.
    /// A snapshot's `folded_events` is set here to the drift events folded
    /// since the previous snapshot. Folds old drift events past the bound.
    pub fn append(&mut self, messages: Vec<pb::AgentMessage>) -> Result<(), OutboxError> {
        if messages.is_empty() {
            return Ok(());
        }
        let mut last = self.last_seq;
        let mut metas = Vec::with_capacity(messages.len());
        let mut bodies = Vec::with_capacity(messages.len());
        let mut carried = false;
        for mut message in messages {
            let (seq, kind) = seq_of(&message).ok_or(OutboxError::NotQueueable)?;
            if seq <= last {
                return Err(OutboxError::OutOfOrder { seq, last });
            }
            last = seq;
            if let Some(pb::agent_message::Body::Snapshot(s)) = &mut message.body {
                s.folded_events = if carried { 0 } else { self.pending_folded };
                carried = true;
            }
            let mut body = Vec::with_capacity(1 + message.encoded_len());
            body.push(TAG_MESSAGE);
            message
                .encode(&mut body)
                .map_err(|e| OutboxError::Corrupt {
                    path: self.dir.clone(),
                    offset: 0,
                    reason: e.to_string(),
                })?;
            if body.len() > MAX_RECORD_BYTES as usize {
                return Err(OutboxError::Corrupt {
                    path: self.dir.clone(),
                    offset: 0,
                    reason: format!("a message of {} bytes is too large to queue", body.len()),
                });
            }
            metas.push((seq, kind, (body.len()) as u32));
            bodies.push(body);
        }
        let at = self.write_records(&bodies)?;
        if carried {
            self.carried_fold();
        }
        for ((seq, kind, len), (segment, offset)) in metas.into_iter().zip(at) {
            self.entries.push_back(Entry {
                seq,
                kind,
                segment,
                offset,
                len,
            });
            if let Some(s) = self.segments.get_mut(&segment) {
                s.live += 1;
            }
            if kind == EntryKind::Drift {
                self.drift_count += 1;
            }
            self.last_seq = seq;
        }
        if self.drift_count > self.options.max_drift_events {
            self.fold()?;
        }
        Ok(())
    }

    /// Folds the oldest drift events so that a tenth of the bound is free.
    fn fold(&mut self) -> Result<(), OutboxError> {
        let keep = self.options.max_drift_events - self.options.max_drift_events / 10;
        let excess = self.drift_count.saturating_sub(keep);
        let Some(through) = self
            .entries
            .iter()
            .filter(|e| e.kind == EntryKind::Drift)
            .nth(excess.saturating_sub(1))
            .map(|e| e.seq)
        else {
            return Ok(());
        };
        let count = excess as u64;
        let mut body = Vec::with_capacity(17);
        body.push(TAG_FOLD);
        body.extend_from_slice(&through.to_le_bytes());
        body.extend_from_slice(&count.to_le_bytes());
        self.write_records(&[body])?;
        self.remove_drift_through(through, None);
        self.pending_folded = self.pending_folded.saturating_add(count);
        self.folded_total = self.folded_total.saturating_add(count);
        if let Some(s) = self.segments.get_mut(&self.active) {
            s.pending_fold = true;
        }
        tracing::warn!(
            folded = count,
            through_seq = through,
            bound = self.options.max_drift_events,
            "outbox full: the oldest drift events are folded into the next snapshot"
        );
        self.delete_spent()?;
        Ok(())
    }

    /// Records that the collector stored everything up to `seq`: the acked
    /// file is replaced atomically, and spent segments are deleted.
    /// An acknowledgement beyond the last queued message covers only what
    /// was queued (the collector may remember more from a wiped agent).
    pub fn ack(&mut self, seq: u64) -> Result<(), OutboxError> {
        let seq = seq.min(self.last_seq);
        if seq <= self.acked {
            return Ok(());
        }
        let path = self.dir.join(ACKED_FILE);
        let tmp = self.dir.join(format!(".{ACKED_FILE}.tmp"));
        let text = format!("{ACKED_FORMAT}\n{seq}\n");
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err(&tmp, "cannot write the acked file"))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_err(&tmp, "cannot write the acked file"))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(io_err(&path, "cannot replace the acked file"))?;
        sync_dir(&self.dir)?;
        self.acked = seq;
        while let Some(front) = self.entries.front() {
            if front.seq > seq {
                break;
            }
            if let Some(s) = self.segments.get_mut(&front.segment) {
                s.live = s.live.saturating_sub(1);
            }
            if front.kind == EntryKind::Drift {
                self.drift_count = self.drift_count.saturating_sub(1);
            }
            self.entries.pop_front();
        }
        self.delete_spent()?;
        Ok(())
    }

    /// Up to `max` queued messages with a sequence number above `after`, in order.
    pub fn read_after(&self, after: u64, max: usize) -> Result<Vec<pb::AgentMessage>, OutboxError> {
        let start = self.entries.partition_point(|e| e.seq <= after);
        let mut out = Vec::new();
        for entry in self.entries.range(start..).take(max) {
            let Some(segment) = self.segments.get(&entry.segment) else {
                continue;
            };
            let mut body = vec![0u8; entry.len as usize];
            segment
                .file
                .read_exact_at(&mut body, entry.offset)
                .map_err(io_err(&segment.path, "cannot read a queued record"))?;
            match decode_body(&body) {
                Ok(Body::Message(m)) => out.push(*m),
                Ok(Body::Fold { .. }) => {}
                Err(reason) => {
                    return Err(OutboxError::Corrupt {
                        path: segment.path.clone(),
                        offset: entry.offset,
                        reason,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The highest sequence number queued or acknowledged (0: none yet).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// The highest sequence number the collector acknowledged.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Messages queued and not acknowledged.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drift events queued and not acknowledged.
    pub fn drift_events(&self) -> usize {
        self.drift_count
    }

    /// Drift events folded since the last snapshot was appended.
    pub fn pending_folded(&self) -> u64 {
        self.pending_folded
    }

    /// Drift events folded since this outbox was opened (with the folds
    /// replayed from its files).
    pub fn folded_total(&self) -> u64 {
        self.folded_total
    }

    /// Segment files on disk.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// The outbox's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The acknowledged sequence number; a missing or unreadable file is 0 (the
/// collector then acknowledges again what it already stored).
fn read_acked(path: &Path) -> u64 {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return 0,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "outbox: cannot read the acked file");
            return 0;
        }
    };
    let mut lines = text.lines();
    match (
        lines.next(),
        lines.next().and_then(|l| l.trim().parse().ok()),
    ) {
        (Some(ACKED_FORMAT), Some(seq)) => seq,
        _ => {
            tracing::warn!(path = %path.display(), "outbox: the acked file is corrupt; resending what is queued");
            0
        }
    }
}
