//! One row mapper per row type: mappers read columns by position through [`Columns`], which
//! both drivers' rows implement, so a row type is decoded by the same code on both backends.

use std::str::FromStr;

use chimatic_domain::Timestamp;
use sqlx::Row as _;

use crate::StoreError;

/// A result row, read by column position.
pub trait Columns {
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError>;
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;
    /// `BOOLEAN` on PostgreSQL, `0`/`1` on SQLite.
    fn flag(&self, i: usize) -> Result<bool, StoreError>;
}

impl dyn Columns + '_ {
    /// A stored id or name parsed back; a failure means the stored data is corrupt.
    pub fn parsed<T: FromStr>(&self, i: usize, what: &'static str) -> Result<T, StoreError> {
        self.text(i)?.parse().map_err(|_| StoreError::Corrupt(what))
    }

    pub fn opt_parsed<T: FromStr>(&self, i: usize, what: &'static str) -> Result<Option<T>, StoreError> {
        self.opt_text(i)?.map(|t| t.parse().map_err(|_| StoreError::Corrupt(what))).transpose()
    }

    pub fn at(&self, i: usize) -> Result<Timestamp, StoreError> {
        self.int(i).map(Timestamp)
    }

    pub fn opt_at(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        Ok(self.opt_int(i)?.map(Timestamp))
    }

    pub fn count(&self, i: usize) -> Result<u64, StoreError> {
        Ok(self.int(i)?.max(0) as u64)
    }

    pub fn u32(&self, i: usize, what: &'static str) -> Result<u32, StoreError> {
        u32::try_from(self.int(i)?).map_err(|_| StoreError::Corrupt(what))
    }

    pub fn digest(&self, i: usize, what: &'static str) -> Result<[u8; 32], StoreError> {
        self.blob(i)?.try_into().map_err(|_| StoreError::Corrupt(what))
    }
}

impl Columns for rusqlite::Row<'_> {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i)?)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(i)?)
    }
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get(i)?)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.get::<_, i64>(i)? != 0)
    }
}

impl Columns for sqlx::postgres::PgRow {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.try_get(i)?)
    }
}

/// A SQLite row copied out of its statement (for rows a write returns, read on the writer's thread).
pub struct OwnedRow(pub Vec<rusqlite::types::Value>);

impl OwnedRow {
    pub fn of(row: &rusqlite::Row<'_>) -> Result<Self, StoreError> {
        let n = row.as_ref().column_count();
        Ok(Self((0..n).map(|i| row.get::<_, rusqlite::types::Value>(i)).collect::<Result<_, _>>()?))
    }

    fn value(&self, i: usize) -> Result<&rusqlite::types::Value, StoreError> {
        self.0.get(i).ok_or(StoreError::Corrupt("column index"))
    }
}

impl Columns for OwnedRow {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or(StoreError::Corrupt("null integer"))
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        use rusqlite::types::Value;
        match self.value(i)? {
            Value::Integer(v) => Ok(Some(*v)),
            Value::Null => Ok(None),
            _ => Err(StoreError::Corrupt("integer column")),
        }
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?.ok_or(StoreError::Corrupt("null text"))
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        use rusqlite::types::Value;
        match self.value(i)? {
            Value::Text(v) => Ok(Some(v.clone())),
            Value::Null => Ok(None),
            _ => Err(StoreError::Corrupt("text column")),
        }
    }
    fn blob(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.opt_blob(i)?.ok_or(StoreError::Corrupt("null blob"))
    }
    fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        use rusqlite::types::Value;
        match self.value(i)? {
            Value::Blob(v) => Ok(Some(v.clone())),
            Value::Null => Ok(None),
            _ => Err(StoreError::Corrupt("blob column")),
        }
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.int(i)? != 0)
    }
}
