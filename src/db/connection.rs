//! Pooled Postgres connections that keep their prepared statements.
//!
//! Each statement of the repository is prepared once per connection, on first use, and then
//! only bound and executed: Postgres neither parses nor plans it again. Checking a connection
//! out of the pool costs no round trip either: a connection whose socket closed is noticed
//! without asking the server.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use bb8::ManageConnection;
use bb8_postgres::PostgresConnectionManager;
use tokio_postgres::types::Type;
use tokio_postgres::{Client, Config, NoTls, Statement};

/// Opens [`PgConnection`]s for the pool.
pub struct PgConnectionManager {
    inner: PostgresConnectionManager<NoTls>,
}

impl PgConnectionManager {
    pub fn new(config: Config) -> Self {
        Self {
            inner: PostgresConnectionManager::new(config, NoTls),
        }
    }
}

/// A client and the statements prepared on it so far, keyed by their SQL text.
pub struct PgConnection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl PgConnection {
    /// `sql` prepared with parameter `types`: on this connection's first use of it, one round
    /// trip to prepare; afterwards from the cache.
    pub async fn prepared(
        &mut self,
        sql: &'static str,
        types: &[Type],
    ) -> Result<Statement, tokio_postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare_typed(sql, types).await?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
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
    type Error = tokio_postgres::Error;

    async fn connect(&self) -> Result<PgConnection, tokio_postgres::Error> {
        Ok(PgConnection {
            client: self.inner.connect().await?,
            statements: HashMap::new(),
        })
    }

    async fn is_valid(&self, conn: &mut PgConnection) -> Result<(), tokio_postgres::Error> {
        // A live socket is taken on trust; a closed one fails here at once, without network,
        // with the error the client gives for a closed connection.
        if conn.client.is_closed() {
            conn.client.simple_query("").await?;
        }
        Ok(())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client.is_closed()
    }
}
