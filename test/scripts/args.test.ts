import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { httpUrlFrom, numberFrom, readCommandLine, UsageError } from '../../scripts/args';

const FLAGS = { rate: { env: 'RATE', default: '20' }, url: {}, tag: { multiple: true } } as const;

describe('the argument parser of scripts/ and bench/', () => {
  it('when a flag, its environment variable and its default compete, then the flag wins, then the variable, and each says where it came from', () => {
    assert.deepEqual(readCommandLine(['--rate=5'], FLAGS, { env: { RATE: '7' } })?.flags.rate, { value: '5', source: '--rate' });
    assert.deepEqual(readCommandLine([], FLAGS, { env: { RATE: '7' } })?.flags.rate, { value: '7', source: 'RATE' });
    assert.deepEqual(readCommandLine([], FLAGS, { env: { RATE: '' } })?.flags.rate, { value: '20', source: '--rate' });
    assert.equal(readCommandLine([], FLAGS)?.flags.url, undefined);
  });

  it('when a flag is repeatable, then every value is kept in order; otherwise the last one counts', () => {
    const line = readCommandLine(['--tag', 'a', '--tag=b', '--rate', '1', '--rate', '2'], FLAGS);
    assert.deepEqual(line?.flags.tag, ['a', 'b']);
    assert.equal(line?.flags.rate.value, '2');
  });

  it('when -h or --help is anywhere, then there is nothing to run, even after a bad argument', () => {
    assert.equal(readCommandLine(['--bogus', '-h'], FLAGS), undefined);
    assert.equal(readCommandLine(['--rate', '1', '--help'], FLAGS), undefined);
  });

  it('when positionals are allowed, then they are returned, -- included; otherwise each is a usage error', () => {
    assert.deepEqual(readCommandLine(['list', '--', '--rate'], FLAGS, { positionals: true })?.positionals, ['list', '--rate']);
    assert.throws(() => readCommandLine(['list'], FLAGS), /unknown argument "list"/);
  });

  for (const [argv, message] of [
    [['--speed', '3'], /unknown argument "--speed"/],
    [['-x'], /unknown argument "-x"/],
    [['--rate'], /--rate needs a value/],
    [['--url', '--rate', '3'], /--url needs a value/],
  ] as const) {
    it(`when given ${JSON.stringify(argv)}, then a UsageError names the bad input`, () => {
      assert.throws(
        () => readCommandLine(argv, FLAGS),
        (err: unknown) => err instanceof UsageError && message.test(err.message),
      );
    });
  }

  it('when a value starts with one dash, then it is a value, and the number check refuses it', () => {
    const rate = readCommandLine(['--rate', '-1'], FLAGS)!.flags.rate;
    assert.throws(() => numberFrom(rate, { min: 0, max: 10 }), /--rate must be a number from 0 to 10, got "-1"/);
  });

  it('when numbers are read, then only plain ones within the range pass, whole when asked', () => {
    const given = (value: string) => ({ value, source: 'N' });
    assert.equal(numberFrom(given(' 2.5 '), { min: 0, max: 10 }), 2.5);
    for (const bad of ['1e3', '0x10', '', 'abc', '11']) assert.throws(() => numberFrom(given(bad), { min: 0, max: 10 }), UsageError, bad);
    assert.throws(() => numberFrom(given('2.5'), { min: 0, max: 10, integer: true }), /N must be a whole number from 0 to 10/);
  });

  it('when URLs are read, then the trailing slash goes, and a base URL may have no path', () => {
    const url = (value: string) => ({ value, source: '--url' });
    assert.equal(httpUrlFrom(url('http://127.0.0.1:8080/')), 'http://127.0.0.1:8080');
    assert.equal(httpUrlFrom(url('https://play.example/prefix/')), 'https://play.example/prefix');
    assert.equal(httpUrlFrom(url('http://127.0.0.1:18083/'), { originOnly: true }), 'http://127.0.0.1:18083');
    assert.throws(() => httpUrlFrom(url('http://127.0.0.1:8083/admin'), { originOnly: true }), /--url must be a base URL/);
    assert.throws(() => httpUrlFrom(url('ftp://x')), /--url must be an http or https URL/);
    assert.throws(() => httpUrlFrom(url('not a url')), /--url must be a URL/);
  });
});
