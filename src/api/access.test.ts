import { describe, expect, it } from 'vitest';
import { AccessLinks } from './access.js';

describe('AccessLinks', () => {
  const links = new AccessLinks('x'.repeat(32));
  const in1h = Date.now() + 3_600_000;
  it('accepts its own link for its audio until it expires', () => {
    const access = links.sign('audio-1', in1h);
    expect(links.verify('audio-1', access)).toBe(true);
    expect(links.verify('audio-1', access, in1h + 1000)).toBe(false);
  });
  it('refuses another audio, another secret, a changed expiry and garbage', () => {
    const access = links.sign('audio-1', in1h);
    expect(links.verify('audio-2', access)).toBe(false);
    expect(new AccessLinks('y'.repeat(32)).verify('audio-1', access)).toBe(false);
    const [exp, mac] = access.split('.');
    expect(links.verify('audio-1', `${Number(exp) + 3600}.${mac}`)).toBe(false);
    for (const bad of ['', 'abc', `${exp}.`, `${exp}.${mac}x`, `-1.${mac}`]) expect(links.verify('audio-1', bad), bad).toBe(false);
  });
  it('refuses a short secret, saying its length', () => {
    expect(() => new AccessLinks('short')).toThrow(/at least 32 bytes, got 5/);
  });
});
