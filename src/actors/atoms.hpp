#pragma once

#include <caf/atom.hpp>
#include <caf/type_id.hpp>

// Every atom of btcstream, declared once (at most 10 characters each).
CAF_BEGIN_TYPE_ID_BLOCK(btcstream, caf::first_custom_type_id)

CAF_ADD_ATOM(btcstream, btcstream::atom, publish, "publish")
CAF_ADD_ATOM(btcstream, btcstream::atom, subscribe, "subscribe")
CAF_ADD_ATOM(btcstream, btcstream::atom, history, "history")
CAF_ADD_ATOM(btcstream, btcstream::atom, live, "live")
CAF_ADD_ATOM(btcstream, btcstream::atom, heartbeat, "heartbeat")
CAF_ADD_ATOM(btcstream, btcstream::atom, session, "session")
CAF_ADD_ATOM(btcstream, btcstream::atom, tick, "tick")
CAF_ADD_ATOM(btcstream, btcstream::atom, fetched, "fetched")
CAF_ADD_ATOM(btcstream, btcstream::atom, retry, "retry")
CAF_ADD_ATOM(btcstream, btcstream::atom, ping, "ping")
CAF_ADD_ATOM(btcstream, btcstream::atom, latest, "latest")
CAF_ADD_ATOM(btcstream, btcstream::atom, updates, "updates")
CAF_ADD_ATOM(btcstream, btcstream::atom, ingest, "ingest")
CAF_ADD_ATOM(btcstream, btcstream::atom, lead, "lead")
CAF_ADD_ATOM(btcstream, btcstream::atom, follow, "follow")
CAF_ADD_ATOM(btcstream, btcstream::atom, lease, "lease")
CAF_ADD_ATOM(btcstream, btcstream::atom, appended, "appended")
CAF_ADD_ATOM(btcstream, btcstream::atom, read, "read")
CAF_ADD_ATOM(btcstream, btcstream::atom, got, "got")
CAF_ADD_ATOM(btcstream, btcstream::atom, leader, "leader")
CAF_ADD_ATOM(btcstream, btcstream::atom, wait, "wait")
CAF_ADD_ATOM(btcstream, btcstream::atom, poller, "poller")
CAF_ADD_ATOM(btcstream, btcstream::atom, retire, "retire")
CAF_ADD_ATOM(btcstream, btcstream::atom, release, "release")
CAF_ADD_ATOM(btcstream, btcstream::atom, ended, "ended")
CAF_ADD_ATOM(btcstream, btcstream::atom, forget, "forget")
CAF_ADD_ATOM(btcstream, btcstream::atom, restore, "restore")

CAF_END_TYPE_ID_BLOCK(btcstream)

namespace btcstream::atom {

// CAF's own atoms, re-exported so every call site reads alike.
using caf::ok_atom;

} // namespace btcstream::atom
