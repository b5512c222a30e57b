/** A delivery's target and server as the journal's unit tests write them. */
import type { DeliveryTarget } from '../../lib/journal';

export const TARGET: DeliveryTarget = {
  organisationsnummer: '9990000045',
  undersokning: 'VINN',
  referensperiod: '2026-10-31',
  filformat: 'V40',
  filnamn: 'V40_2026-10.xml',
};

export const SERVER = 'https://127.0.0.1:8443/m2m/v2/';
