export function buildDashboard(): Promise<void>;
export function ensureDashboard(): Promise<'built' | 'fresh'>;
