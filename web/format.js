// Formatting in the viewer's locale and time zone (Intl only, no library).

const usd = new Intl.NumberFormat(undefined, { style: 'currency', currency: 'USD' });
const usdSigned = new Intl.NumberFormat(undefined, {
  style: 'currency', currency: 'USD', signDisplay: 'exceptZero',
});
// minimumFractionDigits too: engines before ECMA-402 2021 throw a RangeError
// for a maximum below the currency's default minimum (2), and the page never
// starts.
const usdCompact = new Intl.NumberFormat(undefined, {
  style: 'currency', currency: 'USD', minimumFractionDigits: 0, maximumFractionDigits: 0,
});
const pctSigned = new Intl.NumberFormat(undefined, {
  style: 'percent', signDisplay: 'exceptZero', minimumFractionDigits: 2, maximumFractionDigits: 2,
});
const pctSignedSmall = new Intl.NumberFormat(undefined, {
  style: 'percent', signDisplay: 'exceptZero', maximumSignificantDigits: 2,
});
const clock = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
});
const clockDate = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  timeZoneName: 'short',
});
const hms = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const hm = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

export const formatPrice = (p) => usd.format(p);

// Axis labels: no cents once the range is wide enough.
export const formatAxisPrice = (p, step) => (step >= 1 ? usdCompact : usd).format(p);

/** A USD amount rounded to the cent (half away from zero), as it is shown. */
export const roundCents = (d) => (Math.sign(d) * Math.round(Math.abs(d) * 100)) / 100;

/** "+$12.34", "−$0.01" or "$0.00". */
export const formatDelta = (d) => usdSigned.format(roundCents(d));

/** A fraction (0.0123) as "+1.23%"; tiny moves keep two significant digits. */
export function formatPercent(f) {
  if (!Number.isFinite(f)) return '';
  return (f !== 0 && Math.abs(f) < 0.0001 ? pctSignedSmall : pctSigned).format(f);
}

/** Local wall-clock time with the zone; the date too when it is not today. */
export function formatUpdated(date, now = new Date()) {
  return (date.toDateString() === now.toDateString() ? clock : clockDate).format(date);
}

/** For the chart's tooltip and axis. */
export const formatTime = (ms) => hms.format(ms);
export const formatTimeShort = (ms) => hm.format(ms);

/** 3600000 -> "1 h", 600000 -> "10 min", 12000 -> "12 s". */
export function formatDuration(ms) {
  if (ms >= 3600000 && ms % 3600000 === 0) return `${ms / 3600000} h`;
  if (ms >= 60000 && ms % 60000 === 0) return `${ms / 60000} min`;
  if (ms >= 1000) return `${+(ms / 1000).toFixed(1)} s`;
  return `${ms} ms`;
}

/** Heading text for the window: "last hour", "last 10 min". */
export function windowLabel(ms) {
  return ms === 3600000 ? 'Last hour' : `Last ${formatDuration(ms)}`;
}

/**
 * A USD change as a word for CSS (`data-dir`), by the cent formatDelta shows:
 * a change under half a cent reads "$0.00" and is flat.
 */
export function direction(d) {
  const c = roundCents(d);
  return c > 0 ? 'up' : c < 0 ? 'down' : 'flat';
}
