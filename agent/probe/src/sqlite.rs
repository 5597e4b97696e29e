//! A read-only SQLite connection: the few calls the rpm database needs,
//! wrapped safely over the SQLite C library that sqlx links. Every `unsafe`
//! block of the probe's SQLite use is in this module.
//!
//! The database is hostile input: the connection is opened read-only through
//! a URI (so nothing is ever written to the host's files), symlinks are not
//! followed, values are capped in size, schema-defined functions are not
//! trusted, and a statement that runs too long is interrupted.

use std::cell::Cell;
use std::ffi::{CStr, CString, c_int, c_void};
use std::marker::PhantomData;
use std::path::Path;
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;

/// How long a statement waits for a lock held by a writer (an rpm
/// transaction) before it fails.
pub const BUSY_TIMEOUT_MS: c_int = 5_000;

/// The largest string or blob a statement may produce (an rpm header is at
/// most 16 MiB of data plus its index).
pub const MAX_VALUE_BYTES: c_int = 20 * 1024 * 1024;

/// The progress handler runs every this many virtual machine instructions...
const PROGRESS_STEP: c_int = 10_000;
/// ...and interrupts the statement after this many calls (10^9 instructions,
/// some seconds of work: reading every row of a large rpmdb takes well under
/// a thousandth of it).
const PROGRESS_CALLS: u64 = 100_000;

/// Errors of the SQLite calls.
#[derive(Debug, thiserror::Error)]
pub enum SqliteError {
    #[error("{path}: {message} (SQLite error {code})")]
    Sqlite {
        path: String,
        code: c_int,
        message: String,
    },
    #[error("{path}: the statement ran too long and was interrupted")]
    TooExpensive { path: String },
    #[error("{path}: the path contains a NUL byte")]
    NulInPath { path: String },
}

/// How to open the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// `mode=ro&readonly_shm=1`: read-only with locking, so readers see a
    /// consistent database while a writer works, and the write-ahead log is
    /// read through the existing `-shm` index, which is opened read-only.
    /// SQLite creates `-wal` and `-shm` files when they are missing, so this
    /// is only for databases that have both.
    ReadOnlyShared,
    /// `immutable=1`: no locks, no `-wal`/`-shm` at all. Right only when the
    /// main file holds the whole database (no write-ahead log content).
    Immutable,
}

impl OpenMode {
    fn query(self) -> &'static str {
        match self {
            OpenMode::ReadOnlyShared => "mode=ro&readonly_shm=1",
            OpenMode::Immutable => "immutable=1",
        }
    }
}

/// The `file:` URI of `path` with `query`; every byte but unreserved ones
/// and `/` is percent-encoded, so `?`, `#` and `%` in names stay names.
pub fn file_uri(path: &Path, query: &str) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::from("file:");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push('?');
    out.push_str(query);
    out
}

/// An open read-only connection. Not `Send`: it is used on the thread that
/// opened it.
pub struct Connection {
    db: NonNull<ffi::sqlite3>,
    path: String,
    /// Progress handler calls left before a statement is interrupted; its
    /// address is handed to SQLite, so it is boxed and outlives `db`.
    budget: Box<Cell<u64>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The progress handler: counts down the budget, interrupting at zero.
unsafe extern "C" fn progress(budget: *mut c_void) -> c_int {
    // SAFETY: `budget` is the address of the `Cell<u64>` boxed in the
    // `Connection` that registered this handler; the box is freed only after
    // `sqlite3_close`, so it is alive whenever SQLite calls the handler, and
    // SQLite calls it on the connection's own thread (no concurrent access).
    let budget = unsafe { &*(budget as *const Cell<u64>) };
    match budget.get().checked_sub(1) {
        Some(left) => {
            budget.set(left);
            0
        }
        None => 1,
    }
}

impl Connection {
    /// Opens `path` read-only as `mode` says, without following a symlink
    /// in its last component.
    pub fn open(path: &Path, mode: OpenMode) -> Result<Connection, SqliteError> {
        let shown = path.display().to_string();
        let uri =
            CString::new(file_uri(path, mode.query())).map_err(|_| SqliteError::NulInPath {
                path: shown.clone(),
            })?;
        let flags = ffi::SQLITE_OPEN_READONLY
            | ffi::SQLITE_OPEN_URI
            | ffi::SQLITE_OPEN_NOMUTEX
            | ffi::SQLITE_OPEN_NOFOLLOW
            | ffi::SQLITE_OPEN_EXRESCODE;
        let mut raw: *mut ffi::sqlite3 = ptr::null_mut();
        // SAFETY: `uri` is a NUL-terminated string that lives across the
        // call, `raw` is a valid place for the handle, and a null VFS name
        // selects the default VFS.
        let rc = unsafe { ffi::sqlite3_open_v2(uri.as_ptr(), &mut raw, flags, ptr::null()) };
        let Some(db) = NonNull::new(raw) else {
            return Err(SqliteError::Sqlite {
                path: shown,
                code: rc,
                message: "cannot allocate a connection".into(),
            });
        };
        // From here the handle is owned, so every early return closes it.
        let conn = Connection {
            db,
            path: shown,
            budget: Box::new(Cell::new(PROGRESS_CALLS)),
        };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error(rc));
        }
        let budget_ptr = &*conn.budget as *const Cell<u64> as *mut c_void;
        // SAFETY: `db` is an open connection owned by `conn`. The limit and
        // configuration calls take plain integers (the variadic db_config
        // call gets the `int, int*` pair these two options document). The
        // progress handler's argument points into `conn.budget`, which lives
        // until after `sqlite3_close` in `Drop`.
        let rc = unsafe {
            ffi::sqlite3_busy_timeout(db.as_ptr(), BUSY_TIMEOUT_MS);
            ffi::sqlite3_limit(db.as_ptr(), ffi::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES);
            ffi::sqlite3_progress_handler(db.as_ptr(), PROGRESS_STEP, Some(progress), budget_ptr);
            let untrusted = ffi::sqlite3_db_config(
                db.as_ptr(),
                ffi::SQLITE_DBCONFIG_TRUSTED_SCHEMA,
                0 as c_int,
                ptr::null_mut::<c_int>(),
            );
            let defensive = ffi::sqlite3_db_config(
                db.as_ptr(),
                ffi::SQLITE_DBCONFIG_DEFENSIVE,
                1 as c_int,
                ptr::null_mut::<c_int>(),
            );
            if untrusted != ffi::SQLITE_OK {
                untrusted
            } else {
                defensive
            }
        };
        if rc != ffi::SQLITE_OK {
            return Err(conn.error(rc));
        }
        Ok(conn)
    }

    /// The connection's last error, for the result code `rc`.
    fn error(&self, rc: c_int) -> SqliteError {
        if rc & 0xff == ffi::SQLITE_INTERRUPT {
            return SqliteError::TooExpensive {
                path: self.path.clone(),
            };
        }
        // SAFETY: `db` is open; errmsg returns a NUL-terminated string owned
        // by SQLite that stays valid until the next call on the connection,
        // and it is copied before that.
        let message = unsafe {
            let msg = ffi::sqlite3_errmsg(self.db.as_ptr());
            if msg.is_null() {
                String::from("unknown error")
            } else {
                CStr::from_ptr(msg).to_string_lossy().into_owned()
            }
        };
        SqliteError::Sqlite {
            path: self.path.clone(),
            code: rc,
            message,
        }
    }

    /// Prepares `sql` (one statement) for stepping through its rows.
    pub fn query(&self, sql: &CStr) -> Result<Rows<'_>, SqliteError> {
        self.budget.set(PROGRESS_CALLS);
        let mut raw: *mut ffi::sqlite3_stmt = ptr::null_mut();
        // SAFETY: `db` is open, `sql` is NUL-terminated (length -1 means "up
        // to the NUL"), `raw` is a valid place for the statement, and a null
        // tail pointer is allowed.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db.as_ptr(),
                sql.as_ptr(),
                -1,
                &mut raw,
                ptr::null_mut(),
            )
        };
        let stmt = NonNull::new(raw);
        if rc != ffi::SQLITE_OK {
            if let Some(stmt) = stmt {
                // SAFETY: a statement returned alongside an error is still
                // ours to finalize, once.
                unsafe { ffi::sqlite3_finalize(stmt.as_ptr()) };
            }
            return Err(self.error(rc));
        }
        let Some(stmt) = stmt else {
            return Err(SqliteError::Sqlite {
                path: self.path.clone(),
                code: rc,
                message: "the statement is empty".into(),
            });
        };
        Ok(Rows {
            conn: self,
            stmt,
            done: false,
        })
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // SAFETY: `db` is open and every statement borrowing the connection
        // has been finalized (a `Rows` cannot outlive it), so close succeeds
        // and frees the handle; it is not used afterwards.
        unsafe { ffi::sqlite3_close(self.db.as_ptr()) };
    }
}

/// The rows of a prepared statement.
pub struct Rows<'c> {
    conn: &'c Connection,
    stmt: NonNull<ffi::sqlite3_stmt>,
    done: bool,
}

impl<'c> Rows<'c> {
    /// Steps to the next row; `None` after the last one.
    pub fn next_row(&mut self) -> Result<Option<Row<'_>>, SqliteError> {
        if self.done {
            return Ok(None);
        }
        // SAFETY: `stmt` is a live statement owned by `self`.
        let rc = unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) };
        match rc {
            ffi::SQLITE_ROW => Ok(Some(Row {
                stmt: self.stmt,
                _rows: PhantomData,
            })),
            ffi::SQLITE_DONE => {
                self.done = true;
                Ok(None)
            }
            _ => {
                self.done = true;
                Err(self.conn.error(rc))
            }
        }
    }
}

impl Drop for Rows<'_> {
    fn drop(&mut self) {
        // SAFETY: `stmt` is live and finalized exactly once, here.
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

/// The current row. It borrows the `Rows` mutably, so its values (which
/// SQLite frees at the next step) cannot outlive it.
pub struct Row<'r> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    _rows: PhantomData<&'r mut ()>,
}

impl<'r> Row<'r> {
    /// Column `col` as an integer (0 for NULL, as SQLite converts).
    pub fn int64(&self, col: c_int) -> i64 {
        // SAFETY: the statement is positioned on a row (this `Row` exists
        // only between a SQLITE_ROW step and the next step); an out-of-range
        // column yields 0, not undefined behaviour.
        unsafe { ffi::sqlite3_column_int64(self.stmt.as_ptr(), col) }
    }

    /// Column `col` when it is a blob (an empty blob is `Some(&[])`).
    pub fn blob(&self, col: c_int) -> Option<&'r [u8]> {
        // SAFETY: the statement is on a row. The type is read before any
        // conversion; for a BLOB value, column_blob then column_bytes (in that
        // order, as SQLite documents) give a pointer and length that stay
        // valid until the next step or finalize, which needs `&mut Rows`,
        // which this row borrows for 'r.
        unsafe {
            let stmt = self.stmt.as_ptr();
            if ffi::sqlite3_column_type(stmt, col) != ffi::SQLITE_BLOB {
                return None;
            }
            let data = ffi::sqlite3_column_blob(stmt, col);
            let len = usize::try_from(ffi::sqlite3_column_bytes(stmt, col)).ok()?;
            if data.is_null() || len == 0 {
                return Some(&[]);
            }
            Some(std::slice::from_raw_parts(data.cast::<u8>(), len))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_escape_everything_but_plain_path_bytes() {
        assert_eq!(
            file_uri(Path::new("/var/lib/rpm/rpmdb.sqlite"), "immutable=1"),
            "file:/var/lib/rpm/rpmdb.sqlite?immutable=1"
        );
        assert_eq!(
            file_uri(Path::new("/t/a b?c#d%e"), "mode=ro"),
            "file:/t/a%20b%3Fc%23d%25e?mode=ro"
        );
    }

    #[test]
    fn a_missing_database_is_an_error_and_is_not_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("none.sqlite");
        for mode in [OpenMode::ReadOnlyShared, OpenMode::Immutable] {
            let err = Connection::open(&path, mode)
                .and_then(|c| c.query(c"SELECT 1").map(|_| ()))
                .expect_err("no database");
            assert!(err.to_string().contains("none.sqlite"), "{err}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 0);
    }

    #[test]
    fn a_symlinked_database_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("real"), b"").expect("write");
        std::os::unix::fs::symlink("real", dir.path().join("link")).expect("symlink");
        let err = Connection::open(&dir.path().join("link"), OpenMode::Immutable)
            .expect_err("symlink refused");
        assert!(matches!(err, SqliteError::Sqlite { .. }), "{err}");
    }
}
