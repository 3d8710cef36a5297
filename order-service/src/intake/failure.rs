//! How a batch's write went wrong, and what each of its requests is told: shared by the
//! write ([`super::batch`]) and the writer that retries or isolates it ([`super::writer`]).

use super::IntakeError;

/// How a write went wrong.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing was committed; trying again may work (deadlock, serialization failure).
    Retry(sqlx::Error),
    /// Nothing was committed.
    NotWritten(sqlx::Error),
    /// The database did not answer in time; nothing was committed.
    TimedOut,
}

impl Failure {
    /// Sorts a database error: retry, or not written.
    pub(super) fn classify(error: sqlx::Error) -> Self {
        let retry = matches!(&error, sqlx::Error::Database(db)
            if matches!(db.code().as_deref(), Some("40P01" | "40001")));
        if retry {
            Self::Retry(error)
        } else {
            Self::NotWritten(error)
        }
    }

    /// What every request of the failed batch is told.
    pub(super) fn answer(self) -> IntakeError {
        match self {
            Self::TimedOut => IntakeError::Unavailable(
                "the database did not answer in time; nothing was written, try again".to_owned(),
            ),
            Self::Retry(error) | Self::NotWritten(error) if common::db::is_unreachable(&error) => {
                IntakeError::Unavailable(
                    "the database is unavailable; nothing was written, try again shortly"
                        .to_owned(),
                )
            }
            Self::Retry(error) | Self::NotWritten(error) => IntakeError::Failed(error.into()),
        }
    }
}
