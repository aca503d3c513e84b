//! Reading logs back: the minimal lookup the ingest path needs (visibility checks, the load
//! generator's probe, tests). The log explorer builds its search on top of this.

use std::collections::HashMap;

use crate::engine::{Engine, now_ms};
use crate::error::{Error, Result};
use crate::ingest::payload::Payload;
use crate::ingest::record::Level;
use crate::ingest::{FLAG_CACHE_HIT, FLAG_ERROR, FLAG_PAYLOAD, FLAG_REDACTED, FLAG_TRUNCATED, KeyPrincipal};
use crate::rbac::{Action, Principal};
use crate::store::{LogQuery, SeriesKey};
use crate::types::{LogView, Model, Scope};

/// Who reads: a signed-in user (RBAC grants) or an API key with the `read` scope.
#[derive(Clone, Copy)]
pub enum Caller<'a> {
    User(&'a Principal),
    Key(&'a KeyPrincipal),
}

/// A log lookup as the REST API takes it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct LogLookup {
    pub model: String,
    pub trace_id: Option<String>,
    /// Epoch ms, inclusive; default one hour ago.
    pub from: Option<i64>,
    /// Epoch ms, exclusive; default one minute from now.
    pub to: Option<i64>,
    /// 1–1000, default 100.
    pub limit: Option<i64>,
    /// Include request/response text (needs payload permission).
    #[serde(default)]
    pub payloads: bool,
}

impl Engine {
    /// The model, if the caller may read it; NotFound otherwise, so hidden models do not leak.
    pub async fn model_for(&self, caller: Caller<'_>, name: &str, payloads: bool) -> Result<Model> {
        match caller {
            Caller::User(p) => {
                let m = self.get_model(p, name).await?;
                if payloads {
                    p.authorize(Action::ViewPayloads(m.id))?;
                }
                Ok(m)
            }
            Caller::Key(k) => {
                k.require(Scope::Read)?;
                if !k.may_use_model(name) {
                    return Err(Error::NotFound("model"));
                }
                self.store().model_by_name(name).await?.ok_or(Error::NotFound("model"))
            }
        }
    }

    pub async fn find_logs(&self, caller: Caller<'_>, q: &LogLookup) -> Result<Vec<LogView>> {
        let model = self.model_for(caller, &q.model, q.payloads).await?;
        let now = now_ms();
        let limit = q.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid("limit", "limit must be between 1 and 1000"));
        }
        let query = LogQuery {
            model_id: model.id,
            from: q.from.unwrap_or(now - 3_600_000),
            to: q.to.unwrap_or(now + 60_000),
            trace_id: q.trace_id.clone().filter(|t| !t.is_empty()),
            limit,
        };
        let rows = self.store().find_logs(&query).await?;
        let series: HashMap<i64, SeriesKey> = self.store().series_of_model(model.id).await?.into_iter().collect();
        let mut out = Vec::with_capacity(rows.len());
        for s in rows {
            let r = s.row;
            let key = series.get(&r.series_id).cloned().unwrap_or_default();
            let (request, response) = if q.payloads && r.flags & FLAG_PAYLOAD != 0 {
                match self.store().payload(s.id).await? {
                    Some(bytes) => {
                        let p = Payload::decode(&bytes, r.flags & FLAG_TRUNCATED != 0)?;
                        (Some(p.request), Some(p.response))
                    }
                    None => (None, None),
                }
            } else {
                (None, None)
            };
            out.push(LogView {
                id: s.id,
                timestamp: r.ts,
                model: model.name.clone(),
                model_version: key.model_version,
                provider: key.provider,
                environment: key.environment,
                operation: key.operation,
                status: if r.flags & FLAG_ERROR != 0 { "error" } else { "ok" }.to_string(),
                level: Level::from_i64(r.level).as_str().to_string(),
                http_status: r.http_status,
                latency_ms: r.latency_ms,
                ttft_ms: r.ttft_ms,
                input_tokens: r.input_tokens,
                output_tokens: r.output_tokens,
                cached_tokens: r.cached_tokens,
                cost_usd: r.cost_usd,
                cache_hit: r.flags & FLAG_CACHE_HIT != 0,
                feedback: r.feedback,
                error_type: r.error_type,
                message: r.message,
                error_message: r.error_message,
                user_id: r.user_id,
                session_id: r.session_id,
                trace_id: r.trace_id,
                span_id: r.span_id,
                metadata: r.metadata.and_then(|m| serde_json::from_str(&m).ok()),
                redacted: r.flags & FLAG_REDACTED != 0,
                has_payload: r.flags & FLAG_PAYLOAD != 0,
                payload_truncated: r.flags & FLAG_TRUNCATED != 0,
                request,
                response,
            });
        }
        Ok(out)
    }
}
