// Kubernetes resource quantities (the subset storage sizes use) to bytes, so the operator can tell a
// growing volume from an unchanged one. The API server validates the syntax (CEL isQuantity) first.
const SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

export function quantityToBytes(q: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec(q.trim());
  if (!m || m[1] === undefined) return undefined;
  const factor = SUFFIX[m[2] ?? ''];
  return factor === undefined ? undefined : Number(m[1]) * factor;
}
