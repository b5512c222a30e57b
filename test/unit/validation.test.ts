import assert from 'node:assert/strict';
import {
  ValidationError,
  validateOrganisationsnummer,
  validatePathValue,
  validateReferensperiod,
  validateUploadRequest,
  type PathField,
  type UploadRequest,
} from '../../lib';

/** Asserts `fn` throws a ValidationError for `field` whose message contains each of `parts`. */
function refuses(fn: () => unknown, field: string, ...parts: string[]): ValidationError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ValidationError, `expected a ValidationError, got ${String(caught)}`);
  assert.equal(caught.field, field);
  assert.equal(caught.kind, 'validation');
  assert.ok(caught.hint, 'the error has a hint');
  for (const part of parts) assert.ok(caught.message.includes(part), `"${caught.message}" should mention ${part}`);
  return caught;
}

describe('validation', () => {
  describe('validateOrganisationsnummer', () => {
    it('accepts 10 digits, NNNNNN-NNNN and an exact number, returning 10 digits', () => {
      assert.equal(validateOrganisationsnummer('9990000045'), '9990000045');
      assert.equal(validateOrganisationsnummer('999000-0045'), '9990000045');
      assert.equal(validateOrganisationsnummer(' 556016-0680 '), '5560160680');
      assert.equal(validateOrganisationsnummer(9990000045), '9990000045');
    });

    it('refuses a wrong length or a dash anywhere but after the sixth digit, naming field and value', () => {
      refuses(() => validateOrganisationsnummer('999000004'), 'organisationsnummer', '"999000004"', '10 digits');
      refuses(() => validateOrganisationsnummer('99900-00045'), 'organisationsnummer', '10 digits');
      refuses(() => validateOrganisationsnummer('999000--0045'), 'organisationsnummer', '10 digits');
      refuses(() => validateOrganisationsnummer('99900000451'), 'organisationsnummer', '10 digits');
    });

    it('refuses a wrong Luhn check digit and says which digit was expected', () => {
      refuses(() => validateOrganisationsnummer('9990000046'), 'organisationsnummer', 'check digit', 'should be 5');
    });

    it('refuses a third digit below 2 (a personnummer) even with a right check digit', () => {
      // 811218-9876 is a Luhn-valid personnummer.
      refuses(() => validateOrganisationsnummer('811218-9876'), 'organisationsnummer', 'third digit');
    });

    it('refuses numbers that do not convert exactly and values that are not text', () => {
      refuses(() => validateOrganisationsnummer(9990000045.5), 'organisationsnummer', 'text');
      refuses(() => validateOrganisationsnummer(-9990000045), 'organisationsnummer');
      refuses(() => validateOrganisationsnummer(null), 'organisationsnummer', 'null');
      refuses(() => validateOrganisationsnummer(undefined), 'organisationsnummer', 'nothing');
      refuses(() => validateOrganisationsnummer({}), 'organisationsnummer', 'an object');
    });
  });

  describe('validateReferensperiod', () => {
    it('accepts the last day of a month, leap years included', () => {
      assert.equal(validateReferensperiod('2022-06-30'), '2022-06-30');
      assert.equal(validateReferensperiod('2024-02-29'), '2024-02-29');
      assert.equal(validateReferensperiod('2023-02-28'), '2023-02-28');
      assert.equal(validateReferensperiod(' 2022-12-31 '), '2022-12-31');
    });

    it('refuses a day that is not the last and suggests the right one', () => {
      refuses(() => validateReferensperiod('2022-06-15'), 'referensperiod', 'last day', '"2022-06-30"');
      refuses(() => validateReferensperiod('2024-02-28'), 'referensperiod', '"2024-02-29"');
    });

    it('refuses a day the month does not have and suggests its last day', () => {
      refuses(() => validateReferensperiod('2022-06-31'), 'referensperiod', 'no day 31', '"2022-06-30"');
      refuses(() => validateReferensperiod('2023-02-29'), 'referensperiod', 'no day 29', '"2023-02-28"');
    });

    it('refuses a month that does not exist, other formats and missing values', () => {
      refuses(() => validateReferensperiod('2022-13-31'), 'referensperiod', 'month 13');
      refuses(() => validateReferensperiod('20220630'), 'referensperiod', 'yyyy-MM-dd');
      refuses(() => validateReferensperiod('2022-6-30'), 'referensperiod', 'yyyy-MM-dd');
      refuses(() => validateReferensperiod('30/06/2022'), 'referensperiod', 'yyyy-MM-dd');
      refuses(() => validateReferensperiod(undefined), 'referensperiod', 'nothing');
    });
  });

  describe('validatePathValue', () => {
    const fields: PathField[] = ['undersokning', 'filformat', 'version', 'filnamn'];

    it('trims and accepts plain values, including spaces inside, non-ASCII letters and numbers', () => {
      assert.equal(validatePathValue('filformat', ' V40 '), 'V40');
      assert.equal(validatePathValue('filnamn', 'V40 räkenskaper.xml'), 'V40 räkenskaper.xml');
      assert.equal(validatePathValue('filnamn', '..xml'), '..xml');
      assert.equal(validatePathValue('version', 3), '3');
    });

    for (const field of fields) {
      it(`refuses for ${field}: empty, path characters, control characters, "." and ".."`, () => {
        refuses(() => validatePathValue(field, ''), field, 'empty');
        refuses(() => validatePathValue(field, '   '), field, 'empty');
        refuses(() => validatePathValue(field, 'a/b'), field, '"/"');
        refuses(() => validatePathValue(field, 'a\\b'), field, '"\\"');
        refuses(() => validatePathValue(field, 'a?b'), field, '"?"');
        refuses(() => validatePathValue(field, 'a#b'), field, '"#"');
        refuses(() => validatePathValue(field, '.'), field, '"."');
        refuses(() => validatePathValue(field, '..'), field, '".."');
        refuses(() => validatePathValue(field, 'x'.repeat(256)), field, 'at most 255');
      });
    }

    it('shows control characters printably, never raw', () => {
      const err = refuses(() => validatePathValue('filnamn', 'a\u0000b'), 'filnamn', 'U+0000');
      assert.ok(!/[\u0000-\u001f]/.test(err.message), 'no raw control character in the message');
      refuses(() => validatePathValue('filnamn', 'a\nb'), 'filnamn', 'U+000A');
    });

    it('truncates a long value in the message', () => {
      const err = refuses(() => validatePathValue('filnamn', `${'y'.repeat(300)}/`), 'filnamn');
      assert.ok(err.message.includes(`"${'y'.repeat(40)}…"`));
      assert.ok(!err.message.includes('y'.repeat(41)));
    });
  });

  describe('validateUploadRequest', () => {
    const base: UploadRequest = {
      organisationsnummer: '999000-0045',
      undersokning: ' VINN ',
      referensperiod: '2022-06-30',
      filformat: 'V40',
      version: '',
      filnamn: 'V40.xml',
      source: { buffer: Buffer.from('<xml/>') },
    };

    it('normalises a v2 request: no dash, trimmed values, empty version dropped', () => {
      const out = validateUploadRequest(base, 'v2');
      assert.deepEqual(
        { ...out, source: undefined },
        {
          organisationsnummer: '9990000045',
          undersokning: 'VINN',
          referensperiod: '2022-06-30',
          filformat: 'V40',
          filnamn: 'V40.xml',
          source: undefined,
        },
      );
      assert.equal(validateUploadRequest({ ...base, version: '3' }, 'v2').version, '3');
    });

    it('requires referensperiod in v2 and leaves it out in v1', () => {
      refuses(() => validateUploadRequest({ ...base, referensperiod: undefined }, 'v2'), 'referensperiod');
      const v1 = validateUploadRequest({ ...base, referensperiod: undefined }, 'v1');
      assert.equal(v1.referensperiod, undefined);
      assert.equal(validateUploadRequest(base, 'v1').referensperiod, undefined);
    });

    it('takes filnamn from the source path when it is missing', () => {
      const out = validateUploadRequest({ ...base, filnamn: '', source: { path: '/data/in/V40_2026.xml' } }, 'v2');
      assert.equal(out.filnamn, 'V40_2026.xml');
    });

    it('refuses a source with both or neither of path and buffer', () => {
      refuses(
        () => validateUploadRequest({ ...base, source: { path: '/a', buffer: Buffer.alloc(1) } as never }, 'v2'),
        'source',
        'not both',
      );
      refuses(() => validateUploadRequest({ ...base, source: {} as never }, 'v2'), 'source', 'path or a Buffer');
      refuses(() => validateUploadRequest({ ...base, source: undefined as never }, 'v2'), 'source');
    });

    it('names the field at fault among several', () => {
      refuses(() => validateUploadRequest({ ...base, filformat: 'V/40' }, 'v2'), 'filformat');
      refuses(() => validateUploadRequest({ ...base, organisationsnummer: '123' }, 'v2'), 'organisationsnummer');
      refuses(() => validateUploadRequest({ ...base, undersokning: '' }, 'v2'), 'undersokning');
    });
  });
});
