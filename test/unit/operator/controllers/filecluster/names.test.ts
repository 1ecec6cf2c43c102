import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { claimOrdinal, podOrdinal, podUrl, pvcName, selectorString } from '../../../../../operator/src/controllers/filecluster/names.ts';

describe('names', () => {
  it('reads the ordinal of a pod of the cluster, and of nothing else', () => {
    const cases: Array<[string, number | undefined]> = [
      ['files-0', 0],
      ['files-12', 12],
      ['files-01', undefined],
      ['files-', undefined],
      ['files-1a', undefined],
      ['files-peers-1', undefined],
      ['other-1', undefined],
    ];
    for (const [pod, ordinal] of cases) assert.equal(podOrdinal('files', pod), ordinal, pod);
  });

  it("reads the ordinal of a data claim from its pod's name, the inverse of pvcName", () => {
    assert.equal(claimOrdinal('files', pvcName('files', 3)), 3);
    assert.equal(claimOrdinal('files', 'files-3'), undefined, 'a pod name is not a claim');
    assert.equal(claimOrdinal('files', 'data-other-3'), undefined, "another cluster's claim");
    // A cluster whose name starts like another's does not take its claims.
    assert.equal(claimOrdinal('files', 'data-files-b-0'), undefined);
  });

  it('puts an IPv6 pod address in brackets', () => {
    assert.equal(podUrl('10.0.0.7'), 'http://10.0.0.7:8080');
    assert.equal(podUrl('fd00::7'), 'http://[fd00::7]:8080');
  });

  it('selects the pods of one cluster by name and instance', () => {
    assert.equal(selectorString('files'), 'app.kubernetes.io/name=filecluster,app.kubernetes.io/instance=files');
  });
});
