import type { ReactElement } from 'react';
import { usePath } from './hooks/usePath';
import { useWebConfig, type WebConfigState } from './hooks/useWebConfig';
import { NotFoundPage } from './pages/NotFoundPage';
import { OpsPage } from './pages/OpsPage';
import { TalkPage } from './pages/TalkPage';

type Page = (props: { setup: WebConfigState }) => ReactElement;

// One build, pages by path; the gateway answers index.html for each of them.
const ROUTES: Record<string, Page> = {
  '/': TalkPage,
  '/ops': OpsPage,
};

export function App() {
  const path = usePath();
  const setup = useWebConfig();
  const Page = ROUTES[path] ?? NotFoundPage;
  return <Page setup={setup} />;
}
