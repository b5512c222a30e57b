/**
 * The SCB M2M simulator over real TLS with its generated certificates, driven by plain
 * node:https (not the project's client), so it is tested on its own: certificates, the F5
 * session, v2 and v1 uploads, history, faults, stats.
 */
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import * as tls from 'node:tls';
import forge from 'node-forge';
import { isSegmentOutOfOrder, isSessionLost, SEGMENT_SIZE, type UploadPathParts } from '../../lib/api';
import { startSimulator } from '../../simulator';
import type { Simulator } from '../../simulator/types';
import { sha256 } from '../helpers/util';
import {
  Credentials,
  tlsOptions,
  send,
  cookieOf,
  heartbeat,
  multipartParts,
  multipart,
  TARGET,
  segmentPath,
  postSegment,
  uploadV2,
  deliveryOf,
  eventually,
  XML,
} from '../helpers/simulator-requests';

describe('simulator', function () {
  this.timeout(30_000);
  let sim: Simulator;

  before(async () => {
    sim = await startSimulator({ historyDelayMs: 600_000 });
  });

  afterEach(() => sim.faults.clear());

  after(async () => {
    await sim.stop();
    await fs.rm(sim.dir, { recursive: true, force: true });
  });

  describe('certificates', () => {
    it('writes ca.pem, crl.pem and one .pfx per client, subjects naming the organisationsnummer', async () => {
      const files = await fs.readdir(sim.dir);
      for (const f of [
        'ca.pem',
        'crl.pem',
        'valid.pfx',
        'other-org.pfx',
        'expired.pfx',
        'not-yet-valid.pfx',
        'revoked.pfx',
        'legacy.pfx',
        'untrusted.pfx',
      ]) {
        assert.ok(files.includes(f), `${f} in ${files.join(', ')}`);
      }
      assert.equal(await fs.readFile(sim.caPath, 'utf8'), sim.caPem);
      const p12 = forge.pkcs12.pkcs12FromAsn1(
        forge.asn1.fromDer((await fs.readFile(sim.certificates.valid.path)).toString('binary')),
        sim.certificates.valid.passphrase,
      );
      const cert = p12.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag]?.[0]?.cert;
      assert.ok(cert);
      assert.equal(cert.subject.getField('CN').value, '9990000045 VINN KRITA M2M');
      assert.equal(cert.subject.getField({ name: 'serialNumber' }).value, '9990000045');
      assert.equal(cert.serialNumber, sim.certificates.valid.serialNumber);
      // The CRL lists the revoked certificate's serial.
      assert.ok(new crypto.X509Certificate(sim.caPem).ca);
      const crlDer = forge.asn1.fromDer(
        forge.pem.decode(await fs.readFile(path.join(sim.dir, 'crl.pem'), 'utf8'))[0].body,
      );
      const revoked = ((crlDer.value as forge.asn1.Asn1[])[0].value as forge.asn1.Asn1[])[5].value as forge.asn1.Asn1[];
      assert.deepEqual(
        revoked.map((r) => forge.util.bytesToHex((r.value as forge.asn1.Asn1[])[0].value as string)),
        [sim.certificates.revoked.serialNumber],
      );
    });

    it('the modern .pfx loads in Node; the legacy one is refused by Node and read by forge', async () => {
      const modern = await fs.readFile(sim.certificates.valid.path);
      assert.doesNotThrow(() =>
        tls.createSecureContext({ pfx: modern, passphrase: sim.certificates.valid.passphrase }),
      );
      const legacy = await fs.readFile(sim.certificates.legacy.path);
      assert.throws(
        () => tls.createSecureContext({ pfx: legacy, passphrase: sim.certificates.legacy.passphrase }),
        /Unsupported PKCS12 PFX data/,
      );

      const p12Asn1 = forge.asn1.fromDer(legacy.toString('binary'));
      const p12 = forge.pkcs12.pkcs12FromAsn1(p12Asn1, sim.certificates.legacy.passphrase);
      // How it is encrypted: the certificate bag RC2-40, the key bag 3DES.
      const oidHex = (oid: string): string => forge.util.bytesToHex(forge.asn1.oidToDer(oid).getBytes());
      const derHex = legacy.toString('hex');
      assert.ok(derHex.includes(oidHex('1.2.840.113549.1.12.1.6')), 'pbeWithSHAAnd40BitRC2-CBC present');
      assert.ok(derHex.includes(oidHex('1.2.840.113549.1.12.1.3')), 'pbeWithSHAAnd3-KeyTripleDES-CBC present');
      const cert = p12.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag]?.[0]?.cert;
      const key = p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag })[forge.pki.oids.pkcs8ShroudedKeyBag]?.[0]
        ?.key;
      assert.ok(cert && key, 'forge decoded certificate and key');

      // Handed to TLS as PEM, it works against the simulator.
      const pem = { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(key) };
      const reply = await send(sim, { path: '/m2m/v2/heartbeat', credentials: pem });
      assert.equal(reply.status, 200);
    });

    it('refuses each bad certificate with 401 naming the reason, and accepts the valid one', async () => {
      const cases: [Credentials, RegExp][] = [
        ['expired', /expired on/],
        ['not-yet-valid', /not valid before/],
        ['revoked', /is revoked/],
        ['untrusted', /not issued by a CA this server trusts/],
        [null, /no client certificate/],
      ];
      for (const [credentials, reason] of cases) {
        const before = sim.stats().refused;
        const reply = await send(sim, { path: '/m2m/v2/heartbeat', credentials });
        assert.equal(reply.status, 401, `${credentials}: ${reply.body}`);
        assert.match(reply.headers['content-type'] ?? '', /^text\/plain/);
        assert.match(reply.body, reason);
        assert.equal(sim.stats().refused - before, 1);
      }
      const before = sim.stats();
      const ok = await send(sim, { path: '/m2m/v2/heartbeat', credentials: 'valid' });
      assert.equal(ok.status, 200);
      assert.equal(sim.stats().refused, before.refused);
      assert.ok(sim.stats().tlsHandshakes > before.tlsHandshakes && sim.stats().connections > before.connections);
    });
  });

  describe('F5 session', () => {
    it('heartbeat sets LastMRH_Session (last 8 of MRHSession) and MRHSession as name=value;path=/;secure and answers the time as JSON', async () => {
      const before = sim.stats();
      const reply = await send(sim, { path: '/m2m/v2/heartbeat' });
      assert.equal(reply.status, 200);
      assert.match(reply.headers['content-type'] ?? '', /^application\/json/);
      const time = JSON.parse(reply.body) as string;
      assert.match(time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$/);
      assert.ok(Math.abs(Date.parse(time) - Date.now()) < 60_000);
      const cookies = reply.headers['set-cookie'] ?? [];
      const mrh = cookies.find((c) => c.startsWith('MRHSession='));
      const last = cookies.find((c) => c.startsWith('LastMRH_Session='));
      assert.match(mrh ?? '', /^MRHSession=[0-9a-f]{32};path=\/;secure$/);
      assert.match(last ?? '', /^LastMRH_Session=[0-9a-f]{8};path=\/;secure$/);
      assert.equal(
        last?.slice('LastMRH_Session='.length, -';path=/;secure'.length),
        mrh?.slice('MRHSession='.length + 24, -';path=/;secure'.length),
      );
      assert.equal(sim.stats().heartbeats - before.heartbeats, 1);
      assert.equal(sim.stats().sessionsCreated - before.sessionsCreated, 1);

      // A heartbeat on a live session keeps it.
      const again = await send(sim, { path: '/m2m/v1/heartbeat', cookie: cookieOf(reply) });
      assert.equal(again.status, 200);
      assert.equal(again.headers['set-cookie'], undefined);
      assert.equal(sim.stats().sessionsCreated - before.sessionsCreated, 1);
    });

    it('an API request without a session is redirected 302 to /my.policy with fresh, unusable cookies', async () => {
      const reply = await postSegment(sim, '', 0, Buffer.from('<x/>'));
      assert.equal(reply.status, 302);
      assert.equal(reply.headers.location, '/my.policy');
      const fresh = cookieOf(reply);
      assert.match(fresh, /MRHSession=[0-9a-f]{32}/);
      assert.equal(
        (await send(sim, { path: '/m2m/v2/history', cookie: fresh })).status,
        302,
        'the 302 cookies open nothing',
      );
      const policy = await send(sim, { path: '/my.policy' });
      assert.equal(policy.status, 302);
      assert.match(policy.headers.location ?? '', /^\/my\.logout\.php3\?errorcode=19$/);
    });

    it('a session belongs to the certificate that opened it', async () => {
      const cookie = await heartbeat(sim, 'valid');
      assert.equal((await send(sim, { path: '/m2m/v2/history', cookie, credentials: 'other-org' })).status, 302);
      assert.equal((await send(sim, { path: '/m2m/v2/history', cookie, credentials: 'valid' })).status, 200);
    });
  });

  describe('v2 upload', () => {
    it('segments 0, 1, 2, -1 assemble the identical file; the receipt has deliveryId and timeStamp', async () => {
      const cookie = await heartbeat(sim);
      const data = Buffer.concat([XML('a'.repeat(100_000)), crypto.randomBytes(250_000)]);
      const segments = [data.subarray(0, 150_000), data.subarray(150_000, 300_000), data.subarray(300_000)];
      const before = sim.stats().uploads;
      const closing = await uploadV2(sim, cookie, segments);
      assert.equal(closing.status, 200, closing.body);
      assert.match(closing.headers['content-type'] ?? '', /^application\/json/);
      const receipt = JSON.parse(closing.body) as { deliveryId: string; timeStamp: string };
      assert.match(receipt.deliveryId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.ok(!Number.isNaN(Date.parse(receipt.timeStamp)));
      const d = deliveryOf(sim, receipt.deliveryId);
      assert.equal(d.sha256, sha256(data));
      assert.equal(d.size, data.length);
      assert.equal(d.segments, 3);
      assert.equal(d.filnamn, 'V40 fil å.xml', 'percent-decoded');
      assert.equal(d.referensperiod, '2022-06-30');
      assert.equal(d.apiVersion, 'v2');
      assert.ok(d.path);
      assert.equal(sha256(await fs.readFile(d.path)), sha256(data));
      assert.equal(sim.stats().uploads - before, 1);
      assert.deepEqual(await fs.readdir(path.join(sim.dir, 'uploads')), [], 'no part file left behind');
    });

    it('accepts a quoted boundary, an unquoted lower-case field name, a version and a trailing slash', async () => {
      const cookie = await heartbeat(sim);
      const target = { ...TARGET, filnamn: 'v.xml', version: '3' };
      const data = XML('version 3');
      const o = { quotedBoundary: true, unquotedName: true, field: 'file' };
      assert.equal((await postSegment(sim, cookie, 0, data, target, o)).status, 200);
      const empty = multipart(Buffer.alloc(0), o);
      // With a version, a trailing slash is accepted too.
      const closing = await send(sim, {
        method: 'POST',
        path: `${segmentPath(-1, target)}/`,
        cookie,
        headers: empty.headers,
        body: empty.body,
      });
      assert.equal(closing.status, 200, closing.body);
      const d = deliveryOf(sim, (JSON.parse(closing.body) as { deliveryId: string }).deliveryId);
      assert.equal(d.version, '3');
      assert.equal(d.sha256, sha256(data));
    });

    it('a closing segment alone is a 0-byte file; one with content is refused', async () => {
      const cookie = await heartbeat(sim);
      const target = { ...TARGET, filnamn: 'empty.xml' };
      const closing = await postSegment(sim, cookie, -1, Buffer.alloc(0), target);
      assert.equal(closing.status, 200, closing.body);
      const d = deliveryOf(sim, (JSON.parse(closing.body) as { deliveryId: string }).deliveryId);
      assert.equal(d.size, 0);
      assert.equal(d.segments, 0);
      assert.equal(d.sha256, sha256(Buffer.alloc(0)));
      const refused = await postSegment(sim, cookie, -1, Buffer.from('x'), target);
      assert.equal(refused.status, 400);
      assert.match(refused.body, /empty File part/);
    });

    it('a segment out of order is answered 409 SegmentOutOfOrder with the expected number', async () => {
      const cookie = await heartbeat(sim);
      const target = { ...TARGET, filnamn: 'order.xml' };
      const first = await postSegment(sim, cookie, 1, Buffer.from('x'), target);
      assert.equal(first.status, 409);
      assert.deepEqual(JSON.parse(first.body), { error: 'SegmentOutOfOrder', expectedSegment: 0 });
      assert.equal(isSegmentOutOfOrder(first.status, first.body), true);
      assert.equal((await postSegment(sim, cookie, 0, Buffer.from('<a>'), target)).status, 200);
      const skip = await postSegment(sim, cookie, 2, Buffer.from('x'), target);
      assert.equal(skip.status, 409);
      assert.deepEqual(JSON.parse(skip.body), { error: 'SegmentOutOfOrder', expectedSegment: 1 });
    });

    it('a resent last segment replaces it instead of being appended twice', async () => {
      const cookie = await heartbeat(sim);
      const target = { ...TARGET, filnamn: 'resend.xml' };
      await postSegment(sim, cookie, 0, Buffer.from('<a>first-'), target);
      await postSegment(sim, cookie, 1, Buffer.from('SECOND-lost-answer'), target);
      assert.equal((await postSegment(sim, cookie, 1, Buffer.from('second'), target)).status, 200);
      await postSegment(sim, cookie, 2, Buffer.from('-third</a>'), target);
      assert.equal((await postSegment(sim, cookie, 2, Buffer.from('-third</a>'), target)).status, 200);
      const closing = await postSegment(sim, cookie, -1, Buffer.alloc(0), target);
      const d = deliveryOf(sim, (JSON.parse(closing.body) as { deliveryId: string }).deliveryId);
      assert.ok(d.path);
      assert.equal(await fs.readFile(d.path, 'utf8'), '<a>first-second-third</a>');
      assert.equal(d.sha256, sha256(Buffer.from('<a>first-second-third</a>')));
    });

    it('segment 0 again starts the file over', async () => {
      const cookie = await heartbeat(sim);
      const target = { ...TARGET, filnamn: 'restart.xml' };
      await postSegment(sim, cookie, 0, Buffer.from('<old>'), target);
      await postSegment(sim, cookie, 1, Buffer.from('old</old>'), target);
      await postSegment(sim, cookie, 0, Buffer.from('<new/>'), target);
      const closing = await postSegment(sim, cookie, -1, Buffer.alloc(0), target);
      const d = deliveryOf(sim, (JSON.parse(closing.body) as { deliveryId: string }).deliveryId);
      assert.equal(d.sha256, sha256(Buffer.from('<new/>')));
      assert.equal(d.segments, 1);
    });

    it('when the session expires, its pending segments are lost', async () => {
      const cookie = await heartbeat(sim);
      const target = { ...TARGET, filnamn: 'expiry.xml' };
      const partFiles = async () => (await fs.readdir(path.join(sim.dir, 'uploads'))).length;
      const before = await partFiles();
      assert.equal((await postSegment(sim, cookie, 0, Buffer.from('<a>'), target)).status, 200);
      assert.equal(await partFiles(), before + 1);
      sim.faults.expireSessions();
      assert.equal((await postSegment(sim, cookie, 1, Buffer.from('</a>'), target)).status, 302);
      const fresh = await heartbeat(sim);
      const reply = await postSegment(sim, fresh, 1, Buffer.from('</a>'), target);
      assert.equal(reply.status, 409);
      assert.equal((JSON.parse(reply.body) as { expectedSegment: number }).expectedSegment, 0);
      // expireSessions ended every session, so every part file goes.
      await eventually(async () => (await partFiles()) === 0, 5000, 'the part files to be removed');
    });

    it('401 names what the certificate may not deliver', async () => {
      const cookie = await heartbeat(sim, 'other-org');
      const wrongOrg = await postSegment(sim, cookie, 0, Buffer.from('<a/>'), TARGET, {}, 'other-org');
      assert.equal(wrongOrg.status, 401);
      assert.match(wrongOrg.body, /may not deliver for organisationsnummer 9990000045/);
      const wrongSurvey = await postSegment(
        sim,
        cookie,
        0,
        Buffer.from('<a/>'),
        { ...TARGET, organisationsnummer: '5560160680', undersokning: 'KRITA' },
        {},
        'other-org',
      );
      assert.equal(wrongSurvey.status, 401);
      assert.match(wrongSurvey.body, /undersokning KRITA/);
      assert.doesNotMatch(wrongSurvey.body, /organisationsnummer 5560160680/);
      const ok = await postSegment(
        sim,
        cookie,
        0,
        Buffer.from('<a/>'),
        { ...TARGET, organisationsnummer: '5560160680' },
        {},
        'other-org',
      );
      assert.equal(ok.status, 200);
    });

    it('400 problem JSON naming the field for a bad organisationsnummer, referensperiod or segment', async () => {
      const cookie = await heartbeat(sim);
      const cases: [UploadPathParts, string, RegExp][] = [
        [{ ...TARGET, organisationsnummer: '9990000046' }, 'organisationsnummer', /check digit/],
        [{ ...TARGET, organisationsnummer: '999000-0045' }, 'organisationsnummer', /10 digits without a dash/],
        [{ ...TARGET, referensperiod: '2022-06-29' }, 'referensperiod', /last day of its month/],
        [{ ...TARGET, referensperiod: '2022-02-30' }, 'referensperiod', /has no day 30/],
      ];
      for (const [target, field, rule] of cases) {
        const reply = await postSegment(sim, cookie, 0, Buffer.from('<a/>'), target);
        assert.equal(reply.status, 400, reply.body);
        assert.match(reply.headers['content-type'] ?? '', /^application\/problem\+json/);
        const body = JSON.parse(reply.body) as { errors: Record<string, string[]> };
        assert.match(body.errors[field][0], rule);
      }
      const { body, headers } = multipart(Buffer.from('<a/>'));
      const badSegment = await send(sim, {
        method: 'POST',
        path: segmentPath(0).replace('/file/0/', '/file/-2/'),
        cookie,
        headers,
        body,
      });
      assert.equal(badSegment.status, 400);
      assert.ok((JSON.parse(badSegment.body) as { errors: Record<string, string[]> }).errors.segment);
    });

    it('refuses a non-multipart body 415, an oversized one 413, a malformed one 400, and keeps serving', async () => {
      const cookie = await heartbeat(sim);
      const notMultipart = await send(sim, {
        method: 'POST',
        path: segmentPath(0),
        cookie,
        headers: { 'content-type': 'application/xml' },
        body: Buffer.from('<a/>'),
      });
      assert.equal(notMultipart.status, 415);
      const { headers } = multipart(Buffer.alloc(0));
      const tooLarge = await send(sim, {
        method: 'POST',
        path: segmentPath(0),
        cookie,
        headers: { ...headers, 'content-length': SEGMENT_SIZE + 1024 * 1024 },
        body: Buffer.alloc(0),
      }).catch((err: Error) => err);
      assert.ok(!(tooLarge instanceof Error), `answered: ${String(tooLarge)}`);
      assert.equal(tooLarge.status, 413);
      const truncated = multipart(Buffer.from('<a/>'));
      const cut = truncated.body.subarray(0, truncated.body.length - 10);
      const malformed = await send(sim, {
        method: 'POST',
        path: segmentPath(0),
        cookie,
        headers: { ...truncated.headers, 'content-length': cut.length },
        body: cut,
      });
      assert.equal(malformed.status, 400);
      assert.match(malformed.body, /ends before its closing boundary/);
      const twoParts = Buffer.from(
        '--b\r\nContent-Disposition: form-data; name="File"\r\n\r\nx\r\n--b\r\nContent-Disposition: form-data; name="File"\r\n\r\ny\r\n--b--\r\n',
      );
      const two = await send(sim, {
        method: 'POST',
        path: segmentPath(0),
        cookie,
        headers: { 'content-type': 'multipart/form-data; boundary=b' },
        body: twoParts,
      });
      assert.equal(two.status, 400);
      assert.match(two.body, /exactly one part named "File", it has 2/);
      assert.equal((await send(sim, { path: '/m2m/v2/heartbeat' })).status, 200, 'still serving');
    });

    it('a client that aborts mid-body leaves the simulator serving and the file unchanged', async () => {
      const cookie = await heartbeat(sim);
      const target = { ...TARGET, filnamn: 'abort.xml' };
      await postSegment(sim, cookie, 0, Buffer.from('<a>'), target);
      const { headers } = multipartParts({}, 1_000_000);
      const options = {
        ...(await tlsOptions(sim, 'valid')),
        method: 'POST',
        agent: false,
        headers: { ...headers, cookie },
      };
      const requestsBefore = sim.stats().requests;
      await new Promise<void>((resolve) => {
        const req = https.request(new URL(segmentPath(1, target).slice(1), sim.url), options);
        req.on('error', () => resolve());
        req.write(Buffer.alloc(100_000));
        void eventually(() => sim.stats().requests > requestsBefore, 5000, 'the request to arrive').then(
          () => req.destroy(),
          () => req.destroy(),
        );
      });
      assert.equal((await postSegment(sim, cookie, 1, Buffer.from('</a>'), target)).status, 200);
      const closing = await postSegment(sim, cookie, -1, Buffer.alloc(0), target);
      assert.equal(
        deliveryOf(sim, (JSON.parse(closing.body) as { deliveryId: string }).deliveryId).sha256,
        sha256(Buffer.from('<a></a>')),
      );
    });
  });

  describe('v1 upload', () => {
    it('takes the whole file in one POST (field "file") and answers the upload id as text', async () => {
      const cookie = await heartbeat(sim);
      const data = XML('v1');
      const { body, headers } = multipart(data, { field: 'file', filename: 'V40_v1.xml' });
      const reply = await send(sim, { method: 'POST', path: '/m2m/v1/9990000045/VINN/V40/2', cookie, headers, body });
      assert.equal(reply.status, 200, reply.body);
      assert.match(reply.headers['content-type'] ?? '', /^text\/plain/);
      const d = deliveryOf(sim, reply.body);
      assert.equal(d.apiVersion, 'v1');
      assert.equal(d.version, '2');
      assert.equal(d.filnamn, 'V40_v1.xml');
      assert.equal(d.referensperiod, undefined);
      assert.equal(d.sha256, sha256(data));
      const hist = await send(sim, { path: `/m2m/v1/history/${reply.body}`, cookie });
      assert.equal(hist.status, 200);
      assert.equal((JSON.parse(hist.body) as { id: string }).id, reply.body);
      const refused = await send(sim, { method: 'POST', path: '/m2m/v1/5560160680/VINN/V40/', cookie, headers, body });
      assert.equal(refused.status, 401);
      assert.match(refused.body, /organisationsnummer 5560160680/);
    });
  });

  describe('history', () => {
    async function deliver(
      cookie: string,
      content: Buffer,
      filnamn: string,
      segmentSize = content.length,
    ): Promise<string> {
      const segments: Buffer[] = [];
      for (let i = 0; i < content.length; i += segmentSize) segments.push(content.subarray(i, i + segmentSize));
      const closing = await uploadV2(sim, cookie, segments, { ...TARGET, filnamn });
      assert.equal(closing.status, 200, closing.body);
      return (JSON.parse(closing.body) as { deliveryId: string }).deliveryId;
    }

    it('pending until settled, then accepted; the marker (across a segment boundary) or non-XML rejected', async () => {
      const cookie = await heartbeat(sim);
      const good = await deliver(cookie, Buffer.from(`\ufeff  \n${XML('ok').toString().slice(1)}`), 'good.xml');
      const marked = Buffer.from('<Report>SIMULATE-REJECT</Report>');
      const bad = await deliver(cookie, marked, 'marked.xml', 15); // "SIMULATE-REJECT" starts at byte 8: split over two segments
      const notXml = await deliver(cookie, Buffer.from('ISIN;SE0000000001;100\n'), 'data.csv');
      const get = async (id: string) => {
        const reply = await send(sim, { path: `/m2m/v2/history/${id}`, cookie });
        assert.equal(reply.status, 200);
        assert.match(reply.headers['content-type'] ?? '', /^application\/json/);
        return JSON.parse(reply.body) as {
          id: string;
          status: string;
          progressStatus: number;
          meddelanden: string[];
          undersokning: string;
          filformat: string;
          referensperiod: string;
          inskickatDatum: string;
        };
      };
      const pending = await get(good);
      assert.deepEqual(
        {
          id: pending.id,
          status: pending.status,
          progressStatus: pending.progressStatus,
          undersokning: pending.undersokning,
          filformat: pending.filformat,
          referensperiod: pending.referensperiod,
        },
        {
          id: good,
          status: 'Pågår',
          progressStatus: 1,
          undersokning: 'VINN',
          filformat: 'V40',
          referensperiod: '2022-06-30',
        },
      );
      assert.match(pending.inskickatDatum, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}$/);
      assert.equal(deliveryOf(sim, good).status, 'pending');
      sim.settleHistory();
      assert.equal((await get(good)).status, 'Godkänd');
      assert.equal((await get(good)).progressStatus, 3);
      const rejected = await get(bad);
      assert.equal(rejected.progressStatus, 2);
      assert.equal(rejected.status, 'Fel');
      assert.ok(
        rejected.meddelanden.some((m) => m.includes('SIMULATE-REJECT')),
        rejected.meddelanden.join(' | '),
      );
      const notXmlRecord = await get(notXml);
      assert.equal(notXmlRecord.progressStatus, 2);
      assert.ok(notXmlRecord.meddelanden.some((m) => m.includes('inte XML')));
      assert.equal(deliveryOf(sim, bad).status, 'rejected');
      assert.equal(deliveryOf(sim, good).status, 'accepted');

      const list = await send(sim, { path: '/m2m/v2/history', cookie });
      const ids = (JSON.parse(list.body) as { id: string }[]).map((r) => r.id);
      for (const id of [good, bad, notXml]) assert.ok(ids.includes(id));
      const historyBefore = sim.stats().historyRequests;
      // Another organisation sees none of them.
      const other = await heartbeat(sim, 'other-org');
      assert.equal(
        (await send(sim, { path: `/m2m/v2/history/${good}`, cookie: other, credentials: 'other-org' })).status,
        404,
      );
      const otherList = JSON.parse(
        (await send(sim, { path: '/m2m/v2/history', cookie: other, credentials: 'other-org' })).body,
      ) as { id: string }[];
      assert.ok(!otherList.some((r) => r.id === good));
      const unknown = await send(sim, { path: `/m2m/v2/history/${crypto.randomUUID()}`, cookie });
      assert.equal(unknown.status, 404);
      assert.match(unknown.headers['content-type'] ?? '', /^application\/json/);
      assert.equal(sim.stats().historyRequests - historyBefore, 3);
    });
  });

  describe('faults', () => {
    it('failNext answers the matching requests with the status and body, then wears off', async () => {
      const cookie = await heartbeat(sim);
      sim.faults.failNext(2, { status: 503, body: 'Service Unavailable: maintenance', match: /history/ });
      const heartbeatMeanwhile = await send(sim, { path: '/m2m/v2/heartbeat', cookie });
      assert.equal(heartbeatMeanwhile.status, 200, 'a request that does not match is not affected');
      for (let i = 0; i < 2; i++) {
        const reply = await send(sim, { path: '/m2m/v2/history', cookie });
        assert.equal(reply.status, 503);
        assert.equal(reply.body, 'Service Unavailable: maintenance');
      }
      assert.equal((await send(sim, { path: '/m2m/v2/history', cookie })).status, 200);
      sim.faults.failNext(1);
      const plain = await send(sim, { path: '/m2m/v2/history', cookie });
      assert.equal(plain.status, 500);
      assert.match(plain.body, /Internal Server Error/);
    });

    it('resetNext drops the connection mid-segment; the segment is not kept and a resend succeeds', async () => {
      const cookie = await heartbeat(sim);
      const target = { ...TARGET, filnamn: 'reset.xml' };
      const data = Buffer.concat([Buffer.from('<a>'), crypto.randomBytes(300_000), Buffer.from('</a>')]);
      await postSegment(sim, cookie, 0, data.subarray(0, 100_000), target);
      sim.faults.resetNext(1, { match: /\/file\/1\//, afterBytes: 64 * 1024 });
      const reset = await postSegment(sim, cookie, 1, data.subarray(100_000), target).catch(
        (err: NodeJS.ErrnoException) => err,
      );
      assert.ok(reset instanceof Error, 'the connection was dropped');
      assert.match(String(reset.code), /ECONNRESET|EPIPE/);
      assert.equal((await postSegment(sim, cookie, 1, data.subarray(100_000), target)).status, 200);
      const closing = await postSegment(sim, cookie, -1, Buffer.alloc(0), target);
      assert.equal(
        deliveryOf(sim, (JSON.parse(closing.body) as { deliveryId: string }).deliveryId).sha256,
        sha256(data),
      );
    });

    it('expireSessionBeforeNext ends the sessions just before the matching request', async () => {
      const cookie = await heartbeat(sim);
      sim.faults.expireSessionBeforeNext({ match: /history/ });
      assert.equal(
        (await send(sim, { path: '/m2m/v2/heartbeat', cookie })).headers['set-cookie'],
        undefined,
        'not yet',
      );
      assert.equal((await send(sim, { path: '/m2m/v2/history', cookie })).status, 302);
      const fresh = await heartbeat(sim);
      assert.equal((await send(sim, { path: '/m2m/v2/history', cookie: fresh })).status, 200, 'it fired once');
    });

    it('slowNext delays the answer without holding up other requests', async () => {
      const cookie = await heartbeat(sim);
      sim.faults.slowNext(1, 400, { match: /history/ });
      const order: string[] = [];
      const slow = send(sim, { path: '/m2m/v2/history', cookie }).then((r) => {
        order.push('slow');
        return r;
      });
      await eventually(() => sim.stats().historyRequests > 0, 5000, 'the slow request to arrive');
      const fast = await send(sim, { path: '/m2m/v2/heartbeat', cookie });
      order.push('fast');
      assert.equal(fast.status, 200);
      assert.equal((await slow).status, 200);
      assert.deepEqual(order, ['fast', 'slow']);
    });

    it('htmlNext answers 200 with the F5 logon page, which reads as session lost', async () => {
      const cookie = await heartbeat(sim);
      sim.faults.htmlNext(1);
      const reply = await postSegment(sim, cookie, 0, Buffer.from('<a/>'), { ...TARGET, filnamn: 'html.xml' });
      assert.equal(reply.status, 200);
      assert.match(reply.headers['content-type'] ?? '', /^text\/html/);
      assert.equal(isSessionLost(reply.status, reply.headers['content-type'], reply.body), true);
    });

    it('invalidJsonNext answers 200 application/json that does not parse', async () => {
      const cookie = await heartbeat(sim);
      sim.faults.invalidJsonNext(1, { match: /history/ });
      const reply = await send(sim, { path: '/m2m/v2/history', cookie });
      assert.equal(reply.status, 200);
      assert.match(reply.headers['content-type'] ?? '', /^application\/json/);
      assert.throws(() => JSON.parse(reply.body), SyntaxError);
    });

    it('clear removes every armed fault; bad arguments are refused', async () => {
      const cookie = await heartbeat(sim);
      sim.faults.failNext(5);
      sim.faults.htmlNext(5);
      sim.faults.expireSessionBeforeNext();
      sim.faults.clear();
      assert.equal((await send(sim, { path: '/m2m/v2/history', cookie })).status, 200);
      assert.throws(() => sim.faults.failNext(0), /count must be a whole number/);
      assert.throws(() => sim.faults.failNext(1, { status: 42 }), /status must be an HTTP status/);
    });
  });

  describe('stats', () => {
    it('counts the requests in flight while their bodies arrive, the most at once, and 0 once answered', async () => {
      const cookie = await heartbeat(sim);
      // The heartbeat's answer may reach this test just before the simulator sees its response close.
      await eventually(() => sim.stats().inFlight === 0, 10_000, 'the heartbeat to leave the count');
      sim.resetMaxInFlight();
      assert.deepEqual([sim.stats().inFlight, sim.stats().maxInFlight], [0, 0]);
      // Three segments whose bodies this test holds back: each request is in flight until its body ends.
      const content = Buffer.from('<a>in flight</a>');
      const held = [0, 1, 2].map((i) => {
        const { head, tail, headers } = multipartParts({}, content.length);
        const body = new PassThrough();
        body.write(head);
        const target = { ...TARGET, filnamn: `in-flight-${i}.xml` };
        const reply = send(sim, { method: 'POST', path: segmentPath(0, target), cookie, headers, body });
        return { release: () => body.end(Buffer.concat([content, tail])), reply };
      });
      await eventually(
        () => sim.stats().inFlight === 3,
        10_000,
        () => `3 requests in flight, not ${sim.stats().inFlight}`,
      );
      assert.equal(sim.stats().maxInFlight, 3);
      held[0].release();
      assert.equal((await held[0].reply).status, 200);
      await eventually(() => sim.stats().inFlight === 2, 10_000, 'the answered request to leave the count');
      for (const { release } of held.slice(1)) release();
      for (const { reply } of held.slice(1)) assert.equal((await reply).status, 200);
      await eventually(
        () => sim.stats().inFlight === 0,
        10_000,
        () => `no request in flight, not ${sim.stats().inFlight}`,
      );
      assert.equal(sim.stats().maxInFlight, 3, 'the most at once is kept after they end');
      sim.resetMaxInFlight();
      assert.equal(sim.stats().maxInFlight, 0);
    });
  });
});
