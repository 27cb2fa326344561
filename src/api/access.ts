import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Short-lived links to one recording's audio, for what cannot send a bearer token (an `<audio src>`): the expiry and
 * an HMAC-SHA256 of it with the audio id, under a secret only the API holds. A link names no user: whoever holds it
 * may play that recording until it expires, as with a Cloud Storage signed URL.
 */
export class AccessLinks {
  private readonly secret: Buffer;

  /** `secret`: at least 32 bytes; every API instance that must accept a link needs the same one. */
  constructor(secret: string | Buffer = randomBytes(32)) {
    this.secret = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    if (this.secret.length < 32) throw new TypeError(`the access link secret must be at least 32 bytes, got ${this.secret.length}`);
  }

  /** The `access` value for `audioId`, valid until `expiresAt` (ms since the epoch). */
  sign(audioId: string, expiresAt: number): string {
    const exp = Math.floor(expiresAt / 1000);
    return `${exp}.${this.mac(audioId, exp)}`;
  }

  /** Whether `access` is a link this secret signed for `audioId` that has not expired at `now` (ms). */
  verify(audioId: string, access: string, now = Date.now()): boolean {
    const m = /^(\d{1,12})\.([\w-]{43})$/.exec(access);
    if (!m) return false;
    const exp = Number(m[1]);
    if (exp * 1000 <= now) return false;
    const expected = Buffer.from(this.mac(audioId, exp));
    const given = Buffer.from(m[2]!);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  private mac(audioId: string, exp: number): string {
    return createHmac('sha256', this.secret).update(`audio-speech\n${audioId}\n${exp}`).digest('base64url');
  }
}
