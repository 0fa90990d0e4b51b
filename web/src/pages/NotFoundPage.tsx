export function NotFoundPage() {
  return (
    <main>
      <h1>Not found</h1>
      <p>
        <a href="/">Talk to an agent</a>
      </p>
    </main>
  );
}
