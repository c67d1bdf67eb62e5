// Minimal live view: one EventSource on /stream. The browser resumes with
// Last-Event-ID by itself after a network error.
const price = document.getElementById('price');
const state = document.getElementById('state');
const updated = document.getElementById('updated');
const usd = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD' });

function setState(s) {
  state.textContent = s;
  state.dataset.state = s;
}

const source = new EventSource('stream');
source.onopen = () => setState('live');
source.onerror = () => setState(source.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
source.onmessage = (e) => {
  const u = JSON.parse(e.data);
  price.textContent = usd.format(u.price);
  price.dataset.id = e.lastEventId;
  const t = new Date(u.timestamp);
  updated.dateTime = u.timestamp;
  updated.textContent = t.toLocaleTimeString();
};
