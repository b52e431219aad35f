/**
 * The Filecoin calibration network as @filoz/synapse-core 0.5.2 defines it
 * (`chains.ts`: `calibration.id` and `contracts.fwss.address`): the default
 * EIP-712 domain of PDP clients' signatures. A module of its own, free of
 * imports, because `provider start`'s option table (read at every start of
 * the command line) takes its defaults from here.
 */
export const CALIBRATION = {
  chainId: 314159n,
  fwssAddress: '0x02925630df557F957f70E112bA06e50965417CA0'
} as const
