import { afterEach, describe, expect, it } from 'vitest';
import { checkListenHost, isLoopbackHost, UnsafeListenError } from './server.js';

describe('listening with the Auth emulator configured', () => {
  const saved = process.env.FIREBASE_AUTH_EMULATOR_HOST;
  afterEach(() => {
    if (saved === undefined) delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    else process.env.FIREBASE_AUTH_EMULATOR_HOST = saved;
  });

  it('refuses a network address unless allowed, since its tokens are not verified', () => {
    process.env.FIREBASE_AUTH_EMULATOR_HOST = '127.0.0.1:9099';
    for (const host of ['0.0.0.0', '::', '192.168.1.20', 'example.test']) {
      expect(() => checkListenHost(host, false), host).toThrow(UnsafeListenError);
      expect(() => checkListenHost(host, true)).not.toThrow();
    }
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1']) expect(() => checkListenHost(host, false), host).not.toThrow();
    expect(() => checkListenHost('0.0.0.0', false)).toThrow(/anyone who reaches this address could act as any user or admin/);
  });

  it('allows any address against real Firebase Auth', () => {
    delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
    expect(() => checkListenHost('0.0.0.0', false)).not.toThrow();
    expect(isLoopbackHost('0.0.0.0')).toBe(false);
  });
});
