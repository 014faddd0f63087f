//! Pooled Postgres connections that keep their prepared statements.
//!
//! [`PgConnection`] shadows the client's `query_typed*` methods: each distinct SQL text is
//! prepared once per connection, on first use, and afterwards only bound and executed, so
//! Postgres neither parses nor plans it again and the repositories keep their plain
//! `conn.query_typed_opt(sql, params)` calls. Checking a connection out of the pool costs no
//! round trip either: a connection whose socket closed is noticed without asking the server.
//! Every connection, pooled or shared, is opened here, over the TLS of `database.url`.

use std::collections::HashMap;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};

use bb8::ManageConnection;
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Config, Error, Row, Statement, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::connect_error::ConnectError;
use super::tls::TlsPolicy;

/// Statements one connection keeps prepared; SQL past this many is prepared for one use.
/// The crate's SQL is a fixed set, so the bound only guards against a future dynamic query.
const MAX_CACHED_STATEMENTS: usize = 64;

/// Parameters with their Postgres types, as `Client::query_typed` takes them.
pub type TypedParams<'a> = [(&'a (dyn ToSql + Sync), Type)];

/// Opens [`PgConnection`]s for the pool, with the TLS `policy` asks for.
pub struct PgConnectionManager {
    inner: PostgresConnectionManager<MakeRustlsConnect>,
    policy: TlsPolicy,
}

impl PgConnectionManager {
    /// A manager connecting with `config` over `tls`, built for `policy` (which also words
    /// the errors).
    pub(super) fn new(config: Config, tls: MakeRustlsConnect, policy: TlsPolicy) -> Self {
        Self {
            inner: PostgresConnectionManager::new(config, tls),
            policy,
        }
    }
}

/// A client and the statements prepared on it so far, keyed by their SQL text.
pub struct PgConnection {
    client: Client,
    statements: Mutex<HashMap<String, Statement>>,
}

impl PgConnection {
    /// `sql` prepared with the types of `params`: prepared on this connection's first use of
    /// it (one round trip), then taken from the cache.
    async fn statement(&self, sql: &str, params: &TypedParams<'_>) -> Result<Statement, Error> {
        let cached = self.cache().get(sql).cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let types: Vec<Type> = params.iter().map(|(_, ty)| ty.clone()).collect();
        let statement = self.client.prepare_typed(sql, &types).await?;
        let mut cache = self.cache();
        if cache.len() < MAX_CACHED_STATEMENTS {
            cache.insert(sql.to_owned(), statement.clone());
        }
        Ok(statement)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Statement>> {
        // The map stays consistent even if a holder panicked: every insert is one call.
        self.statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Like `Client::query_typed`, with the statement prepared once per connection.
    pub async fn query_typed(
        &self,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> Result<Vec<Row>, Error> {
        let statement = self.statement(sql, params).await?;
        self.client.query(&statement, &values(params)).await
    }

    /// Like `Client::query_typed_one`, with the statement prepared once per connection.
    pub async fn query_typed_one(&self, sql: &str, params: &TypedParams<'_>) -> Result<Row, Error> {
        let statement = self.statement(sql, params).await?;
        self.client.query_one(&statement, &values(params)).await
    }

    /// Like `Client::query_typed_opt`, with the statement prepared once per connection.
    pub async fn query_typed_opt(
        &self,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> Result<Option<Row>, Error> {
        let statement = self.statement(sql, params).await?;
        self.client.query_opt(&statement, &values(params)).await
    }
}

fn values<'a>(params: &'a TypedParams<'a>) -> Vec<&'a (dyn ToSql + Sync)> {
    params.iter().map(|(value, _)| *value).collect()
}

/// Typed queries either on a pooled connection (statements cached) or in a transaction (sent
/// as they are), for code that runs the same statement both ways.
pub trait TypedQueries: Sync {
    fn query_typed_opt(
        &self,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send;
}

impl TypedQueries for PgConnection {
    fn query_typed_opt(
        &self,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send {
        PgConnection::query_typed_opt(self, sql, params)
    }
}

impl TypedQueries for Transaction<'_> {
    fn query_typed_opt(
        &self,
        sql: &str,
        params: &TypedParams<'_>,
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send {
        Transaction::query_typed_opt(self, sql, params)
    }
}

impl Deref for PgConnection {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConnection {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

impl ManageConnection for PgConnectionManager {
    type Connection = PgConnection;
    type Error = ConnectError;

    async fn connect(&self) -> Result<PgConnection, ConnectError> {
        let client = self
            .inner
            .connect()
            .await
            .map_err(|error| ConnectError::new(&error, &self.policy))?;
        Ok(PgConnection {
            client,
            statements: Mutex::new(HashMap::new()),
        })
    }

    async fn is_valid(&self, conn: &mut PgConnection) -> Result<(), ConnectError> {
        // A live socket is taken on trust; a closed one fails here at once, without network,
        // with the error the client gives for a closed connection.
        if conn.client.is_closed() {
            conn.client
                .simple_query("")
                .await
                .map_err(|error| ConnectError::new(&error, &self.policy))?;
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client.is_closed()
    }
}
