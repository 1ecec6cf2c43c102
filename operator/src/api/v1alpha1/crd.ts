// The FileCluster CustomResourceDefinition: names, the served version, its subresources and printer
// columns around the schema in schema.ts. `npm run generate` writes it to charts/filecluster/crds/.

import { FileClusterSchema } from './schema.ts';
import { GROUP, KIND, VERSION } from './types.ts';

export const fileClusterCrd = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: {
    name: `fileclusters.${GROUP}`,
    labels: { 'app.kubernetes.io/name': 'filecluster', 'app.kubernetes.io/part-of': 'filecluster' },
  },
  spec: {
    group: GROUP,
    scope: 'Namespaced',
    names: { kind: KIND, listKind: `${KIND}List`, plural: 'fileclusters', singular: 'filecluster', shortNames: ['fc'], categories: ['all'] },
    versions: [
      {
        name: VERSION,
        served: true,
        storage: true,
        subresources: {
          status: {},
          scale: { specReplicasPath: '.spec.replicas', statusReplicasPath: '.status.replicas', labelSelectorPath: '.status.selector' },
        },
        additionalPrinterColumns: [
          { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
          { name: 'Ready', type: 'integer', jsonPath: '.status.readyReplicas' },
          { name: 'Peers-Synced', type: 'string', jsonPath: '.status.conditions[?(@.type=="PeersSynced")].status' },
          { name: 'Peer-Gen', type: 'integer', jsonPath: '.status.peerGeneration', priority: 1 },
          { name: 'Status', type: 'string', jsonPath: '.status.conditions[?(@.type=="Progressing")].reason', priority: 1 },
          { name: 'Image', type: 'string', jsonPath: '.status.image', priority: 1 },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: { openAPIV3Schema: FileClusterSchema },
      },
    ],
  },
} as const;
