// The load generator of `npm run bench -- api`, run as its own process so it does not share an event loop (or a
// core's time slices) with the server it measures. Argument: a JSON config; prints autocannon's result as JSON.
import autocannon from 'autocannon';

const cfg = JSON.parse(process.argv[2]);
const bodies = cfg.bodies ?? [];
const paths = cfg.paths ?? [];
/** With `bodies`: the Authorization header of each body's request (its owner), round robin with them. */
const auths = cfg.auths ?? [];
let next = 0;
const result = await autocannon({
  url: cfg.url,
  method: cfg.method ?? 'GET',
  headers: cfg.headers ?? {},
  connections: cfg.connections,
  ...(cfg.amount ? { amount: cfg.amount } : { duration: cfg.durationSeconds }),
  // A different body (e.g. audio id for POST /audio/process) or path (e.g. task id) per request, round robin.
  ...(bodies.length
    ? {
        requests: [
          {
            setupRequest: (req) => {
              const i = next++;
              const auth = auths.length ? { authorization: auths[i % auths.length] } : {};
              return { ...req, body: bodies[i % bodies.length], headers: { ...req.headers, ...auth } };
            },
          },
        ],
      }
    : {}),
  ...(paths.length ? { requests: [{ setupRequest: (req) => ({ ...req, path: paths[next++ % paths.length] }) }] } : {}),
});
process.stdout.write(
  JSON.stringify({
    requests: result.requests,
    latency: result.latency,
    errors: result.errors,
    timeouts: result.timeouts,
    non2xx: result.non2xx,
    statusCodeStats: result.statusCodeStats,
    durationSeconds: result.duration,
  }),
);
