//! The request handler hickory-server calls for each query.

use std::net::SocketAddr;
use std::sync::Mutex;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;

use super::forward::forward;
use super::log;
use super::zone::{Answer, Watch, Zone};

/// The zone and the watch of the file it comes from. A Mutex because hickory wants a Sync
/// handler; the runtime has one thread, so it is never contended.
pub struct State {
    pub watch: Watch,
    pub zone: Zone,
}

impl State {
    /// Reloads the zone if the records file changed.
    pub fn refresh(&mut self) {
        match self.watch.refresh() {
            Ok(Some(entries)) => self.zone = Zone::new(&entries),
            Ok(None) => {}
            Err(e) => log(format_args!("reading records: {e}")),
        }
    }
}

pub struct Handler {
    pub state: Mutex<State>,
    pub upstreams: Vec<SocketAddr>,
}

/// Our own EDNS in answers to queries that had one.
const EDNS_PAYLOAD: u16 = 1232;

impl Handler {
    fn lookup(&self, request: &Request) -> Option<Answer> {
        let info = request.request_info().ok()?;
        let q = info.query.original();
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.refresh();
        Some(state.zone.lookup(q.name(), q.query_type(), q.query_class()))
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(&self, request: &Request, mut response: R) -> ResponseInfo {
        let meta = &request.metadata;
        let builder = MessageResponseBuilder::from_message_request(request);
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        let our_edns = request.edns.as_ref().map(|_| &edns);
        let mut reply = Metadata::response_from_request(meta);
        reply.recursion_available = true;

        let sent = if meta.op_code != OpCode::Query {
            response.send_response(builder.error_msg(meta, ResponseCode::NotImp)).await
        } else {
            match self.lookup(request) {
                None => response.send_response(builder.error_msg(meta, ResponseCode::FormErr)).await,
                Some(Answer::Ours(records)) => {
                    reply.authoritative = true;
                    let mut b = builder;
                    if let Some(e) = our_edns {
                        b.edns(e);
                    }
                    response.send_response(b.build(reply, records.iter(), [], [], [])).await
                }
                Some(Answer::NxDomain) => {
                    reply.authoritative = true;
                    reply.response_code = ResponseCode::NXDomain;
                    let mut b = builder;
                    if let Some(e) = our_edns {
                        b.edns(e);
                    }
                    response.send_response(b.build_no_records(reply)).await
                }
                Some(Answer::Forward) => match forward(&self.upstreams, request.as_slice(), meta.id, request.protocol() == Protocol::Tcp).await {
                    Some(up) => {
                        let mut b = builder;
                        if let Some(e) = &up.edns {
                            b.edns(e);
                        }
                        let mut m = up.metadata;
                        m.id = meta.id;
                        response
                            .send_response(b.build(m, up.answers.iter(), up.authorities.iter(), [], up.additionals.iter()))
                            .await
                    }
                    None => response.send_response(builder.error_msg(meta, ResponseCode::ServFail)).await,
                },
            }
        };
        match sent {
            Ok(info) => info,
            Err(e) => {
                log(format_args!("sending answer to {}: {e}", request.src()));
                let mut m = Metadata::response_from_request(meta);
                m.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata: m,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}
